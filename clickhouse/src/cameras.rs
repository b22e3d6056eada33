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
