-- The case registry: one row per version of a case, the whole case as JSON in `body`;
-- readers take the highest version (ORDER BY version DESC LIMIT 1 BY case_id), merges keep
-- only it. Written directly by the query nodes (a few rows a day), never by the sinks.
CREATE TABLE IF NOT EXISTS cases
(
    case_id       String,
    version       UInt64,
    updated_at_ms Int64,
    body          String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY case_id;

-- Legal holds: retention keeps these detections (and their snapshots) while the case is
-- not closed. A hold placed twice collapses on merge and is deduplicated on read. Never
-- partitioned, never touched by retention.
CREATE TABLE IF NOT EXISTS legal_holds
(
    case_id      String,
    event_id     FixedString(16),
    placed_by    String,
    placed_at_ms Int64
)
ENGINE = ReplacingMergeTree()
ORDER BY (case_id, event_id)
