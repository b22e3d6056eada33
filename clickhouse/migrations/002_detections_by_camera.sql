-- "Who passed here?": the same rows ordered by camera, fed by a materialized view on every
-- insert into detections. The view writes TO an ordinary table so retention can drop its
-- partitions by name on every ClickHouse version.
CREATE TABLE IF NOT EXISTS detections_by_camera
(
    camera_id        String,
    captured_at_ms   Int64,
    event_id         FixedString(16),
    subject_key      String,
    object_class     UInt8,
    plate            String,
    plate_confidence Float32,
    has_snapshot     UInt8,
    day              Date
)
ENGINE = ReplacingMergeTree()
PARTITION BY toMonday(day)
ORDER BY (camera_id, captured_at_ms, event_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS detections_by_camera_mv TO detections_by_camera
AS SELECT
    camera_id,
    captured_at_ms,
    event_id,
    subject_key,
    object_class,
    plate,
    plate_confidence,
    has_snapshot,
    toDate(toDateTime(intDiv(captured_at_ms, 1000), 'UTC'), 'UTC') AS day
FROM detections
