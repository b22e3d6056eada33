-- Every accepted detection, one row per event_id (after merges; reads dedup too).
-- A track is one primary-key range read per weekly partition:
--   WHERE subject_key = ? AND captured_at_ms >= ? AND captured_at_ms < ?
CREATE TABLE IF NOT EXISTS detections
(
    subject_key      String,
    captured_at_ms   Int64,
    event_id         FixedString(16),
    camera_id        String,
    object_class     UInt8,
    plate            String,
    plate_confidence Float32,
    vehicle_color    UInt8,
    vehicle_type     UInt8,
    bbox_x           UInt32,
    bbox_y           UInt32,
    bbox_width       UInt32,
    bbox_height      UInt32,
    has_snapshot     UInt8,
    gateway_id       String,
    received_at_ms   Int64,
    day              Date MATERIALIZED toDate(toDateTime(intDiv(captured_at_ms, 1000), 'UTC'), 'UTC')
)
ENGINE = ReplacingMergeTree()
PARTITION BY toMonday(day)
ORDER BY (subject_key, captured_at_ms, event_id)
