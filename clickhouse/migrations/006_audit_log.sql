-- Append-only audit trail, loaded in batches from the camtrail.audit.v1 topic. One hash
-- chain per query node (node_id, seq); redelivered records collapse on merge and are
-- deduplicated on read. Never partitioned, never touched by retention.
CREATE TABLE IF NOT EXISTS audit_log
(
    node_id         String,
    seq             UInt64,
    at_ms           Int64,
    user            String,
    role            String,
    case_id         String,
    reason          String,
    kind            String,
    parameters_json String,
    result_count    UInt64,
    client_addr     String,
    prev_hash       String,
    hash            String
)
ENGINE = ReplacingMergeTree()
ORDER BY (node_id, seq)
