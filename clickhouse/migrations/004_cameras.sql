-- The camera registry. `camtrail migrate --cameras FILE` loads a new version into a staging
-- table and swaps it in with one RENAME, so readers never see a half-loaded registry.
CREATE TABLE IF NOT EXISTS cameras
(
    camera_id   String,
    district    String,
    lat         Float64,
    lon         Float64,
    heading_deg Float32,
    road        String,
    gateway_id  String
)
ENGINE = MergeTree()
ORDER BY camera_id
