-- Watchlist entries (布控): one row per version of an entry, the entry as JSON in `body`;
-- readers take the highest version. Written directly by the query nodes (a few rows a day).
CREATE TABLE IF NOT EXISTS watchlist_entries
(
    entry_id      String,
    version       UInt64,
    updated_at_ms Int64,
    body          String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY entry_id
;

-- Watchlist hits: one row per version of a hit (found, then reviewed), the hit as JSON;
-- hit_id is `{entry_id}/{event_id}`, so an entry's hits are one key range and a hit
-- delivered twice is one row.
CREATE TABLE IF NOT EXISTS watchlist_hits
(
    hit_id        String,
    version       UInt64,
    updated_at_ms Int64,
    body          String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY hit_id
