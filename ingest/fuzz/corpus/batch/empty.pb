
gw-a*