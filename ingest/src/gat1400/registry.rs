//! Registry updates from `/VIID/Tollgates` and `/VIID/Lanes`: the new cameras are merged
//! into the registry in force and the result replaces it everywhere, in order — the
//! registry file (written beside, synced, renamed over: a crash leaves the old file or the
//! new one), then each backend copy (`hooks`: the ClickHouse `cameras` table in the
//! distributed mode, through the same atomic load as `camtrail migrate --cameras`), then
//! the validator. One update at a time; a failure leaves the registry in force unchanged
//! for the validator (the file may already be new: the next update or restart converges).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use camtrail_model::{Camera, CameraRegistry};
use futures::future::BoxFuture;

use crate::validate::Validator;

/// A backend copy of the registry to replace after the file (e.g. ClickHouse `cameras`).
pub type RegistryHook =
    Arc<dyn Fn(Arc<CameraRegistry>) -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

/// Applies registry updates.
pub struct RegistryUpdater {
    path: Option<PathBuf>,
    hooks: std::sync::Mutex<Vec<RegistryHook>>,
    validator: Arc<Validator>,
    lock: tokio::sync::Mutex<()>,
}

impl RegistryUpdater {
    /// Updates written to `path` (none: in memory only, for tests), then `hooks`, then
    /// `validator`.
    pub fn new(path: Option<PathBuf>, hooks: Vec<RegistryHook>, validator: Arc<Validator>) -> Self {
        Self {
            path,
            hooks: std::sync::Mutex::new(hooks),
            validator,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Also replace `hook`'s copy on every later update.
    pub fn add_hook(&self, hook: RegistryHook) {
        self.hooks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(hook);
    }

    /// The registry in force.
    pub fn current(&self) -> Arc<CameraRegistry> {
        self.validator.registry()
    }

    /// Add or replace `cameras` (by id) and put the result in force.
    pub async fn upsert(&self, cameras: Vec<Camera>) -> anyhow::Result<Arc<CameraRegistry>> {
        let _one_at_a_time = self.lock.lock().await;
        let current = self.validator.registry();
        let mut merged: Vec<Camera> = current.cameras().to_vec();
        let mut position: std::collections::HashMap<String, usize> = merged
            .iter()
            .enumerate()
            .map(|(index, camera)| (camera.camera_id.clone(), index))
            .collect();
        for camera in cameras {
            match position.get(&camera.camera_id) {
                Some(&index) => merged[index] = camera,
                None => {
                    position.insert(camera.camera_id.clone(), merged.len());
                    merged.push(camera);
                }
            }
        }
        let registry = Arc::new(CameraRegistry::new(merged)?);
        if let Some(path) = &self.path {
            let path = path.clone();
            let to_write = Arc::clone(&registry);
            tokio::task::spawn_blocking(move || write_atomically(&path, &to_write)).await??;
        }
        let hooks = self
            .hooks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for hook in hooks {
            hook(Arc::clone(&registry)).await?;
        }
        self.validator.replace_registry(Arc::clone(&registry));
        tracing::info!(
            cameras = registry.len(),
            "camera registry updated (GA/T 1400)"
        );
        Ok(registry)
    }
}

/// Write `registry` as CSV to `path` through a synced temporary file and a rename.
fn write_atomically(path: &Path, registry: &CameraRegistry) -> anyhow::Result<()> {
    let directory = path.parent().filter(|p| !p.as_os_str().is_empty());
    let temporary = path.with_extension("csv.updating");
    {
        let mut file = std::fs::File::create(&temporary)?;
        let mut buffered = std::io::BufWriter::new(&mut file);
        registry.write_csv(&mut buffered)?;
        buffered.flush()?;
        drop(buffered);
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)?;
    if let Some(directory) = directory {
        // The rename itself is durable once the directory is synced.
        std::fs::File::open(directory)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::ValidationLimits;

    fn camera(id: &str, gateway: &str) -> Camera {
        Camera {
            camera_id: id.into(),
            district: "南山".into(),
            lat: 22.5,
            lon: 113.9,
            heading_deg: 0.0,
            road: "深南大道".into(),
            gateway_id: gateway.into(),
        }
    }

    #[tokio::test]
    async fn an_update_reaches_file_hooks_and_validator() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("cameras.csv");
        let start = Arc::new(CameraRegistry::new(vec![camera("A", "gw-1")]).expect("registry"));
        let validator = Arc::new(Validator::new(ValidationLimits::default(), start));
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let hook_seen = Arc::clone(&seen);
        let hook: RegistryHook = Arc::new(move |registry: Arc<CameraRegistry>| {
            let seen = Arc::clone(&hook_seen);
            Box::pin(async move {
                seen.store(registry.len(), std::sync::atomic::Ordering::SeqCst);
                Ok(())
            })
        });
        let updater = RegistryUpdater::new(Some(path.clone()), vec![hook], Arc::clone(&validator));
        let mut moved = camera("A", "gw-1");
        moved.lat = 23.0;
        updater
            .upsert(vec![moved, camera("B", "gw-1")])
            .await
            .expect("update");
        assert_eq!(validator.registry().len(), 2);
        assert_eq!(validator.registry().get("A").map(|c| c.lat), Some(23.0));
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);
        let from_file = CameraRegistry::from_csv_path(&path).expect("file");
        assert_eq!(from_file.len(), 2);
        assert!(!path.with_extension("csv.updating").exists());
    }
}
