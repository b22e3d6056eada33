-- Re-encoded JPEG thumbnails (longest side <= 256 px), one per event that had a snapshot.
CREATE TABLE IF NOT EXISTS snapshots
(
    event_id       FixedString(16),
    captured_at_ms Int64,
    jpeg           String,
    day            Date MATERIALIZED toDate(toDateTime(intDiv(captured_at_ms, 1000), 'UTC'), 'UTC')
)
ENGINE = ReplacingMergeTree()
PARTITION BY toMonday(day)
ORDER BY event_id
