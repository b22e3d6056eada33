-- "Who passed here, then?" by hour first: detections_by_hour replaces detections_by_camera.
--
-- Why. detections_by_camera's key (camera_id, captured_at_ms) makes a scene (every camera
-- within 1 km, over one hour) ~150 scattered camera ranges, each at least one 8,192-row
-- granule in every part of the week: at 100M rows a scene read ~860,000 rows for ~150
-- returned and missed 100 ms at p99. With the hour first, a window is a handful of
-- contiguous hour ranges in which the cameras' rows lie close together: the same scenes read
-- ~100,000 rows, p50 12 ms (BENCHMARKS.md, issue 17). A query over one camera and many
-- hours (Passes up to 7 days) now reads a granule per hour instead of per part; the
-- investigator's default passes window is 2 h.
--
-- hour = intDiv(captured_at_ms, 3600000), truncated toward zero on every version, as the
-- reader's bound (Rust `/`) is; readers add `hour >= ? AND hour <= ?` beside the exact
-- captured_at_ms range, so the key is used without relying on monotonic-function analysis.
CREATE TABLE IF NOT EXISTS detections_by_hour
(
    hour                  Int64,
    camera_id             String,
    captured_at_ms        Int64,
    event_id              FixedString(16),
    subject_key           String,
    object_class          UInt8,
    plate                 String,
    plate_confidence      Float32,
    has_snapshot          UInt8,
    day                   Date,
    vehicle_color         UInt8,
    vehicle_type          UInt8,
    plate_color           UInt8,
    vehicle_brand         String,
    direction             UInt8,
    speed_kmh             Float32,
    plate_char_confidence Array(UInt8)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toMonday(day)
ORDER BY (hour, camera_id, captured_at_ms, event_id);

-- The view first, then the copy of what is already stored: an insert between the two is in
-- both, and copies share the sort key (merges keep one; every reader reads LIMIT 1 BY
-- event_id). That also makes the copy safe to repeat when a run is cut short before its
-- record (the runner allows an INSERT … SELECT into a table whose key ends in event_id).
-- The copy reads detections, the table of record, so rows stored before migration 007 get
-- their vehicle colour and type here too. It reads the whole table: at 100M rows on the
-- benchmark machine it took about three minutes.
CREATE MATERIALIZED VIEW IF NOT EXISTS detections_by_hour_mv TO detections_by_hour
AS SELECT
    intDiv(captured_at_ms, 3600000) AS hour,
    camera_id,
    captured_at_ms,
    event_id,
    subject_key,
    object_class,
    plate,
    plate_confidence,
    has_snapshot,
    toDate(toDateTime(intDiv(captured_at_ms, 1000), 'UTC'), 'UTC') AS day,
    vehicle_color,
    vehicle_type,
    plate_color,
    vehicle_brand,
    direction,
    speed_kmh,
    plate_char_confidence
FROM detections;

INSERT INTO detections_by_hour
SELECT
    intDiv(captured_at_ms, 3600000) AS hour,
    camera_id,
    captured_at_ms,
    event_id,
    subject_key,
    object_class,
    plate,
    plate_confidence,
    has_snapshot,
    toDate(toDateTime(intDiv(captured_at_ms, 1000), 'UTC'), 'UTC') AS day,
    vehicle_color,
    vehicle_type,
    plate_color,
    vehicle_brand,
    direction,
    speed_kmh,
    plate_char_confidence
FROM detections;

-- Nothing reads detections_by_camera any more (a node of the previous release still running
-- would fail its Passes until restarted: migrate, then roll the query nodes).
DROP TABLE IF EXISTS detections_by_camera_mv;

DROP TABLE IF EXISTS detections_by_camera
