//! Whether a node takes new work: `/healthz` and gRPC health (`grpc.health.v1.Health`) both
//! read one [`Readiness`]. At shutdown a node turns it off *first*, while its listeners are
//! still open, so load balancers and gateways see NOT_SERVING / 503 and go elsewhere before
//! connections are refused; then it drains and closes.

use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// A gRPC health service and the service names it reports.
type Attached = (HealthReporter, Vec<String>);

/// A node's readiness, shared by its HTTP and gRPC endpoints (cheap to clone).
#[derive(Clone, Default)]
pub struct Readiness {
    stopping: CancellationToken,
    grpc: Arc<Mutex<Vec<Attached>>>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("ready", &self.is_ready())
            .finish()
    }
}

impl Readiness {
    /// Ready, with no gRPC health service attached yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the node still takes new work.
    pub fn is_ready(&self) -> bool {
        !self.stopping.is_cancelled()
    }

    /// Resolves once [`Readiness::stop`] was called.
    pub async fn stopped(&self) {
        self.stopping.cancelled().await;
    }

    /// Report `services` (and the server as a whole) SERVING on `reporter` now, and
    /// NOT_SERVING once [`Readiness::stop`] is called.
    pub async fn attach(&self, reporter: HealthReporter, services: &[&str]) {
        let status = if self.is_ready() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        let mut names: Vec<String> = services.iter().map(|s| (*s).to_string()).collect();
        names.push(String::new());
        for name in &names {
            reporter.set_service_status(name, status).await;
        }
        self.grpc
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((reporter, names));
    }

    /// Stop taking new work: `/healthz` answers 503 and every attached gRPC health service
    /// NOT_SERVING from now on.
    pub async fn stop(&self) {
        self.stopping.cancel();
        let attached = self
            .grpc
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for (reporter, names) in attached {
            for name in &names {
                reporter
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
            }
        }
    }
}
