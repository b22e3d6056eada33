-- Vehicle attributes on every detection (DetectionEvent fields 12-16): plate colour, brand,
-- direction of travel, speed and the reader's per-character confidence. `detections` gains
-- the new ones; `detections_by_camera` gains them and the colour and type it did not carry,
-- so Passes can return them and filter on them inside its (camera_id, captured_at_ms) range.
-- Rows stored before this migration read the defaults: 0 (unknown), '' and [].
--
-- Idempotence. ClickHouse 18.16 knows no IF NOT EXISTS for ADD COLUMN (Code 62, syntax error),
-- and a plain ADD COLUMN fails when re-run. So each ALTER adds exactly one column, and the
-- migration runner (`src/migrate.rs`, `existing_column`) skips an `ALTER TABLE t ADD COLUMN c`
-- statement when system.columns already lists c in t: a run interrupted after some of these
-- statements finishes the rest. `migrations/tests/test_modern_engine.py` applies the files
-- with the same rule.
ALTER TABLE detections ADD COLUMN plate_color UInt8;
ALTER TABLE detections ADD COLUMN vehicle_brand String;
ALTER TABLE detections ADD COLUMN direction UInt8;
ALTER TABLE detections ADD COLUMN speed_kmh Float32;
ALTER TABLE detections ADD COLUMN plate_char_confidence Array(UInt8);

ALTER TABLE detections_by_camera ADD COLUMN vehicle_color UInt8;
ALTER TABLE detections_by_camera ADD COLUMN vehicle_type UInt8;
ALTER TABLE detections_by_camera ADD COLUMN plate_color UInt8;
ALTER TABLE detections_by_camera ADD COLUMN vehicle_brand String;
ALTER TABLE detections_by_camera ADD COLUMN direction UInt8;
ALTER TABLE detections_by_camera ADD COLUMN speed_kmh Float32;
ALTER TABLE detections_by_camera ADD COLUMN plate_char_confidence Array(UInt8);

-- The view is replaced without a moment in which no view feeds detections_by_camera (an
-- insert in that moment would be missing from Passes for good): a second view with the new
-- columns first, then the old one dropped and recreated under its name, then the second
-- dropped. While two views exist an insert reaches detections_by_camera twice; the copies
-- share the sort key, so merges and the readers' `LIMIT 1 BY event_id` keep one (the
-- old view's copy has the attributes unknown). Every statement is idempotent by itself
-- (IF [NOT] EXISTS), and at every point of a re-run at least one view exists.
CREATE MATERIALIZED VIEW IF NOT EXISTS detections_by_camera_mv_007 TO detections_by_camera
AS SELECT
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

DROP TABLE IF EXISTS detections_by_camera_mv;

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
    toDate(toDateTime(intDiv(captured_at_ms, 1000), 'UTC'), 'UTC') AS day,
    vehicle_color,
    vehicle_type,
    plate_color,
    vehicle_brand,
    direction,
    speed_kmh,
    plate_char_confidence
FROM detections;

DROP TABLE IF EXISTS detections_by_camera_mv_007
