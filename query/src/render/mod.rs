//! Pictures and exchange formats of a track: the PNG map ([`map`], drawn with
//! `camtrail-render`), GeoJSON ([`geojson`]) and the workspace's offline base map
//! ([`basemap`]).

pub mod basemap;
pub mod geojson;
pub mod map;
