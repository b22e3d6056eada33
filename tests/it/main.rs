//! camtrail's integration tests, one binary (one link) with a module per area. They run
//! against the real services `deploy/local/test.sh` starts (Kafka, ClickHouse) and the real
//! `camtrail` binary; a test that needs a service and cannot reach it fails, naming the
//! service and the command that starts it. Tests that need the distributed mode are built
//! only with the `distributed` feature (the default).

#[cfg(feature = "distributed")]
mod alert_role;
mod analytics_node;
#[cfg(feature = "distributed")]
mod analytics_scoring;
mod cases;
#[cfg(feature = "distributed")]
mod cli;
#[cfg(feature = "distributed")]
mod clickhouse;
#[cfg(feature = "distributed")]
mod dashboard;
#[cfg(feature = "distributed")]
mod gat1400;
#[cfg(feature = "distributed")]
mod ingest;
#[cfg(feature = "distributed")]
mod ingest_e2e;
#[cfg(feature = "distributed")]
mod query_e2e;
mod query_fuzz;
mod query_node;
mod raw_grpc;
mod serve_e2e;
#[cfg(feature = "distributed")]
mod sink;
#[cfg(feature = "distributed")]
mod sink_e2e;
#[cfg(feature = "distributed")]
mod store_contract;
#[cfg(feature = "distributed")]
mod track_scoring;
mod watchlist;
