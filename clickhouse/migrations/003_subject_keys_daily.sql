-- Distinct subject keys per day with their sighting counts: wildcard and misread searches
-- match here (a few million short rows) and then read detections by primary key.
CREATE TABLE IF NOT EXISTS subject_keys_daily
(
    subject_key  String,
    day          Date,
    object_class UInt8,
    sightings    UInt64
)
ENGINE = SummingMergeTree(sightings)
PARTITION BY toMonday(day)
ORDER BY (subject_key, day, object_class);

CREATE MATERIALIZED VIEW IF NOT EXISTS subject_keys_daily_mv TO subject_keys_daily
AS SELECT
    subject_key,
    toDate(toDateTime(intDiv(captured_at_ms, 1000), 'UTC'), 'UTC') AS day,
    object_class,
    toUInt64(count()) AS sightings
FROM detections
GROUP BY subject_key, day, object_class
