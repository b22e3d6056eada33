//! Loading the camera registry into the `cameras` table.

use camtrail_model::CameraRegistry;

use super::{ClickhouseConfig, StoreError};
use crate::rows::CameraRow;

/// Replace the content of `cameras` with `registry`, atomically for readers: rows go into a
/// staging table that one `RENAME TABLE` statement swaps in. Returns the number of rows.
pub async fn load_cameras(
    config: &ClickhouseConfig,
    registry: &CameraRegistry,
) -> Result<u64, StoreError> {
    if !config.cluster.is_empty() {
        // The staging table's swap creates tables outside the migrations; a replicated
        // `cameras` would need its own ZooKeeper path per staging copy. The roles read the
        // registry file; the table is a convenience for ad-hoc SQL on one server.
        return Err(StoreError::Migration {
            version: 4,
            name: "004_cameras.sql",
            message: "loading the camera table into a cluster is not supported; every role \
                      reads the registry file (query.registry_path)"
                .into(),
        });
    }
    let client = config.client();
    let run = |sql: &'static str| {
        let client = client.clone();
        async move {
            client
                .query(sql)
                .execute()
                .await
                .map_err(|e| StoreError::clickhouse(sql, e))
        }
    };
    // ClickHouse 18.16 renames the two tables of the swap below one after the other: a load
    // stopped between them leaves no `cameras` and the last registry in `cameras_previous`.
    // Put it back before anything else, so such a stop never loses the registry.
    let exists = |table: &'static str| {
        let client = client.clone();
        async move {
            client
                .query(table)
                .fetch_one::<u8>()
                .await
                .map_err(|e| StoreError::clickhouse(table, e))
        }
    };
    if exists("EXISTS TABLE cameras").await? == 0
        && exists("EXISTS TABLE cameras_previous").await? == 1
    {
        run("RENAME TABLE cameras_previous TO cameras").await?;
    }
    // With neither left (an older version of this function dropped `cameras_previous` after
    // such a stop), the table is created again from its migration.
    for migration in crate::MIGRATIONS.iter().filter(|m| m.version == 4) {
        for statement in migration.statements() {
            client
                .query(&statement)
                .execute()
                .await
                .map_err(|e| StoreError::clickhouse("create cameras", e))?;
        }
    }
    run("DROP TABLE IF EXISTS cameras_staging").await?;
    run("DROP TABLE IF EXISTS cameras_previous").await?;
    run("CREATE TABLE cameras_staging AS cameras").await?;
    let mut insert = client
        .insert::<CameraRow<'_>>("cameras_staging")
        .await
        .map_err(|e| StoreError::clickhouse("insert cameras", e))?;
    for camera in registry.cameras() {
        let row = CameraRow {
            camera_id: &camera.camera_id,
            district: &camera.district,
            lat: camera.lat,
            lon: camera.lon,
            heading_deg: camera.heading_deg,
            road: &camera.road,
            gateway_id: &camera.gateway_id,
        };
        insert
            .write(&row)
            .await
            .map_err(|e| StoreError::clickhouse("insert cameras", e))?;
    }
    insert
        .end()
        .await
        .map_err(|e| StoreError::clickhouse("insert cameras", e))?;
    run("RENAME TABLE cameras TO cameras_previous, cameras_staging TO cameras").await?;
    run("DROP TABLE cameras_previous").await?;
    Ok(registry.len() as u64)
}
