//! The node's batch permits, with a cap per gateway.
//!
//! A batch needs one of the node's permits while it is validated and published, and gives
//! it back the moment its events are durable (before its ack is delivered, so a gateway
//! that does not read its acks holds none). The node's permits are handed out first come,
//! first served (a FIFO semaphore: the shortest waits when gateways behave alike), and no
//! gateway may hold more than `max_in_flight_per_gateway` of them: a gateway at its cap
//! waits on its own queue, outside the node's, so its many streams cannot crowd out
//! another gateway's one, and whatever it does, the rest of the node stays for the others.
//!
//! (A first version handed each returned permit to the waiting gateway holding fewest. It
//! protected as well, but reordering every batch behind other gateways' lengthened the
//! ingest benchmark's start-up burst: p99 18–107 ms before, 50–190 ms with it.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Node permits and each gateway's share of them (cheap to clone).
#[derive(Clone)]
pub struct NodePermits {
    node: Arc<Semaphore>,
    /// `camtrail_ingest_node_permits_free`, kept current on every take and return.
    free: Gauge,
    per_gateway: usize,
    /// One semaphore of `per_gateway` permits per gateway that has published. Gateways are
    /// authenticated, so this holds at most one entry per configured credential.
    gateways: Arc<Mutex<HashMap<Arc<str>, Arc<Semaphore>>>>,
}

/// One node permit and one of its gateway's, both returned when dropped.
pub struct Permit {
    node: Option<OwnedSemaphorePermit>,
    _gateway: OwnedSemaphorePermit,
    free: Gauge,
}

impl Permit {
    fn new(node: OwnedSemaphorePermit, gateway: OwnedSemaphorePermit, free: &Gauge) -> Self {
        free.dec();
        Self {
            node: Some(node),
            _gateway: gateway,
            free: free.clone(),
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.node.take().is_some() {
            self.free.inc();
        }
    }
}

impl NodePermits {
    /// `total` node permits, at most `per_gateway` of them held by one gateway (both at
    /// least 1); `free` follows how many node permits are free.
    pub fn new(total: usize, per_gateway: usize, free: Gauge) -> Self {
        free.set(i64::try_from(total.max(1)).unwrap_or(i64::MAX));
        Self {
            node: Arc::new(Semaphore::new(total.max(1))),
            free,
            per_gateway: per_gateway.clamp(1, total.max(1)),
            gateways: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn gateway(&self, gateway: &str) -> Arc<Semaphore> {
        // The lock guards a map that every critical section leaves consistent.
        let mut gateways = self.gateways.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(semaphore) = gateways.get(gateway) {
            return Arc::clone(semaphore);
        }
        let semaphore = Arc::new(Semaphore::new(self.per_gateway));
        gateways.insert(Arc::from(gateway), Arc::clone(&semaphore));
        semaphore
    }

    /// A permit for `gateway` now, if the node has one free and the gateway is below its cap.
    pub fn try_acquire(&self, gateway: &str) -> Option<Permit> {
        let own = self.gateway(gateway).try_acquire_owned().ok()?;
        let node = Arc::clone(&self.node).try_acquire_owned().ok()?;
        Some(Permit::new(node, own, &self.free))
    }

    /// A permit for `gateway`: first a place within its cap, then a node permit in arrival
    /// order. Cancel-safe (tokio's semaphores). `None` only if the semaphores were closed,
    /// which this type never does.
    pub async fn acquire(&self, gateway: &str) -> Option<Permit> {
        let own = self.gateway(gateway).acquire_owned().await.ok()?;
        let node = Arc::clone(&self.node).acquire_owned().await.ok()?;
        Some(Permit::new(node, own, &self.free))
    }

    /// Node permits free now.
    pub fn available(&self) -> usize {
        self.node.available_permits()
    }

    /// Permits `gateway` holds or has reserved within its cap now.
    pub fn held_by(&self, gateway: &str) -> usize {
        self.per_gateway - self.gateway(gateway).available_permits()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn permits_come_back_on_drop() {
        let free = Gauge::default();
        let pool = NodePermits::new(3, 3, free.clone());
        let a = pool.acquire("a").await.expect("permit");
        let b = pool.try_acquire("a").expect("free");
        assert_eq!((pool.available(), pool.held_by("a"), free.get()), (1, 2, 1));
        drop(a);
        drop(b);
        assert_eq!((pool.available(), pool.held_by("a"), free.get()), (3, 0, 3));
    }

    #[tokio::test]
    async fn a_gateway_at_its_cap_leaves_the_rest_of_the_node_to_others() {
        let pool = NodePermits::new(8, 2, Gauge::default());
        let greedy: Vec<Permit> = vec![
            pool.acquire("greedy").await.expect("1"),
            pool.acquire("greedy").await.expect("2"),
        ];
        // Its third batch waits on its own cap, though the node has 6 free...
        assert!(pool.try_acquire("greedy").is_none());
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { pool.acquire("greedy").await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        assert_eq!(pool.available(), 6);
        // ...and does not stand in the node's queue: every other gateway is served at once.
        let others: Vec<Permit> = (0..6)
            .map(|i| {
                pool.try_acquire(&format!("gw-{i}"))
                    .expect("free for others")
            })
            .collect();
        assert_eq!(pool.available(), 0);
        drop(greedy);
        drop(others);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("served once below its cap")
            .expect("join");
    }

    #[tokio::test]
    async fn the_node_queue_is_first_come_first_served() {
        let pool = NodePermits::new(1, 1, Gauge::default());
        let held = pool.acquire("x").await.expect("permit");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for name in ["a", "b", "c"] {
            let (pool, tx) = (pool.clone(), tx.clone());
            tokio::spawn(async move {
                let permit = pool.acquire(name).await.expect("permit");
                tx.send(name).expect("send");
                tokio::time::sleep(Duration::from_millis(5)).await;
                drop(permit);
            });
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(held);
        let mut order = Vec::new();
        for _ in 0..3 {
            order.push(rx.recv().await.expect("served"));
        }
        assert_eq!(order, ["a", "b", "c"]);
    }

    #[tokio::test]
    async fn a_cancelled_wait_takes_nothing() {
        let pool = NodePermits::new(1, 1, Gauge::default());
        let held = pool.acquire("a").await.expect("permit");
        let waiting = pool.acquire("b");
        assert!(
            tokio::time::timeout(Duration::from_millis(20), waiting)
                .await
                .is_err()
        );
        drop(held);
        assert_eq!((pool.available(), pool.held_by("b")), (1, 0));
    }
}
