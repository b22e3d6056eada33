//! The node's batch permits, shared fairly between gateways.
//!
//! A batch needs one permit while it is validated and published; the permit is returned
//! the moment its events are durable (before the ack is delivered, so a gateway that does
//! not read its acks holds none). When every permit is taken, batches wait; a returned
//! permit goes to the waiting gateway that holds the fewest (ties: the one served least
//! recently). So while others wait, no gateway is handed a permit ahead of one holding
//! fewer, holdings converge to equal shares within one round of publishes (milliseconds,
//! as permits come back when batches are durable), and one gateway's many streams cannot
//! crowd out another gateway's one. With free permits nobody waits: an idle city leaves
//! the whole node to whoever is sending.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

/// Permits shared between gateways (cheap to clone).
#[derive(Clone)]
pub struct FairPermits {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    free: usize,
    /// Permits held, per gateway (absent: none).
    held: HashMap<Arc<str>, usize>,
    /// Waiting batches, per gateway, oldest first (absent: none).
    waiting: HashMap<Arc<str>, VecDeque<oneshot::Sender<FairPermit>>>,
    /// When each gateway was last handed a permit by [`FairPermits::release`].
    last_served: HashMap<Arc<str>, u64>,
    tick: u64,
}

/// One permit, returned when dropped.
pub struct FairPermit {
    pool: FairPermits,
    gateway: Arc<str>,
    /// False once the permit has been passed on (a waiter that went away).
    armed: bool,
}

impl FairPermits {
    /// `total` permits (at least 1).
    pub fn new(total: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                free: total.max(1),
                held: HashMap::new(),
                waiting: HashMap::new(),
                last_served: HashMap::new(),
                tick: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The lock guards plain counters that every critical section leaves consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A permit for `gateway` now, if one is free.
    pub fn try_acquire(&self, gateway: &str) -> Option<FairPermit> {
        let mut inner = self.lock();
        (inner.free > 0).then(|| self.grant_free(&mut inner, gateway))
    }

    fn grant_free(&self, inner: &mut Inner, gateway: &str) -> FairPermit {
        inner.free -= 1;
        let key = inner.key(gateway);
        inner.count(&key);
        FairPermit {
            pool: self.clone(),
            gateway: key,
            armed: true,
        }
    }

    /// A permit for `gateway`, waiting for one when none is free. Cancel-safe: dropping the
    /// future returns a permit it may have been handed.
    pub async fn acquire(&self, gateway: &str) -> FairPermit {
        let receiver = {
            let mut inner = self.lock();
            if inner.free > 0 {
                return self.grant_free(&mut inner, gateway);
            }
            let (sender, receiver) = oneshot::channel();
            let key = inner.key(gateway);
            inner.waiting.entry(key).or_default().push_back(sender);
            receiver
        };
        match receiver.await {
            Ok(permit) => permit,
            // Unreachable while `self` is alive (it owns the senders), but never hang.
            Err(_) => Box::pin(self.acquire(gateway)).await,
        }
    }

    /// Permits free now.
    pub fn available(&self) -> usize {
        self.lock().free
    }

    /// Permits held by `gateway` now.
    pub fn held_by(&self, gateway: &str) -> usize {
        self.lock().held.get(gateway).copied().unwrap_or(0)
    }

    /// `gateway` returns a permit: hand it to the waiting gateway holding the fewest, or
    /// put it back.
    fn release(&self, gateway: Arc<str>) {
        let mut from = gateway;
        loop {
            let next = {
                let mut inner = self.lock();
                inner.take_back(&from);
                match inner.next_waiter() {
                    Some((to, sender)) => {
                        inner.count(&to);
                        Some((to, sender))
                    }
                    None => {
                        inner.free += 1;
                        None
                    }
                }
            };
            // Sent outside the lock: a refused permit must not be dropped while it is held.
            let Some((to, sender)) = next else { return };
            let permit = FairPermit {
                pool: self.clone(),
                gateway: Arc::clone(&to),
                armed: true,
            };
            match sender.send(permit) {
                Ok(()) => return,
                Err(mut refused) => {
                    // That waiter went away: return its permit in this loop, not recursively.
                    refused.armed = false;
                    from = to;
                }
            }
        }
    }
}

impl Inner {
    fn key(&self, gateway: &str) -> Arc<str> {
        self.held
            .get_key_value(gateway)
            .map(|(key, _)| Arc::clone(key))
            .unwrap_or_else(|| Arc::from(gateway))
    }

    fn count(&mut self, gateway: &Arc<str>) {
        *self.held.entry(Arc::clone(gateway)).or_default() += 1;
    }

    fn take_back(&mut self, gateway: &Arc<str>) {
        if let Some(held) = self.held.get_mut(gateway) {
            *held -= 1;
            if *held == 0 {
                self.held.remove(gateway);
            }
        }
    }

    /// The oldest waiter of the waiting gateway that holds the fewest permits, ties to the
    /// one served least recently.
    fn next_waiter(&mut self) -> Option<(Arc<str>, oneshot::Sender<FairPermit>)> {
        let gateway = self
            .waiting
            .keys()
            .min_by_key(|gateway| {
                (
                    self.held.get(*gateway).copied().unwrap_or(0),
                    self.last_served.get(*gateway).copied().unwrap_or(0),
                )
            })
            .map(Arc::clone)?;
        let queue = self.waiting.get_mut(&gateway)?;
        let sender = queue.pop_front()?;
        if queue.is_empty() {
            self.waiting.remove(&gateway);
        }
        self.tick += 1;
        self.last_served.insert(Arc::clone(&gateway), self.tick);
        if self.last_served.len() > 4 * (self.held.len() + self.waiting.len()) + 64 {
            // Forget gateways that neither hold nor wait; they start level again.
            let (held, waiting) = (&self.held, &self.waiting);
            self.last_served
                .retain(|g, _| held.contains_key(g) || waiting.contains_key(g));
        }
        Some((gateway, sender))
    }
}

impl Drop for FairPermit {
    fn drop(&mut self) {
        if self.armed {
            self.armed = false;
            self.pool.release(Arc::clone(&self.gateway));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Poll `future` once: is it ready?
    fn ready<F: std::future::Future>(future: std::pin::Pin<&mut F>) -> Option<F::Output> {
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        match future.poll(&mut cx) {
            std::task::Poll::Ready(value) => Some(value),
            std::task::Poll::Pending => None,
        }
    }

    #[tokio::test]
    async fn free_permits_go_to_whoever_asks_and_come_back_on_drop() {
        let pool = FairPermits::new(3);
        let a = pool.acquire("a").await;
        let b = pool.try_acquire("a").expect("free");
        assert_eq!((pool.available(), pool.held_by("a")), (1, 2));
        drop(a);
        drop(b);
        assert_eq!((pool.available(), pool.held_by("a")), (3, 0));
    }

    #[tokio::test]
    async fn a_returned_permit_goes_to_the_gateway_holding_fewest() {
        let pool = FairPermits::new(4);
        let mut greedy: Vec<FairPermit> = Vec::new();
        for _ in 0..4 {
            greedy.push(pool.acquire("greedy").await);
        }
        assert!(pool.try_acquire("modest").is_none(), "none free");
        // The greedy gateway queued first, and more.
        let mut greedy_waits: Vec<_> = (0..4).map(|_| Box::pin(pool.acquire("greedy"))).collect();
        let mut modest_waits: Vec<_> = (0..4).map(|_| Box::pin(pool.acquire("modest"))).collect();
        for wait in greedy_waits.iter_mut().chain(modest_waits.iter_mut()) {
            assert!(ready(wait.as_mut()).is_none());
        }
        // Two permits come back: both go to the modest gateway (it holds fewer), so each
        // now holds its share of 2.
        greedy.pop();
        greedy.pop();
        let modest: Vec<FairPermit> = modest_waits
            .iter_mut()
            .filter_map(|wait| ready(wait.as_mut()))
            .collect();
        assert_eq!(modest.len(), 2);
        assert_eq!((pool.held_by("greedy"), pool.held_by("modest")), (2, 2));
        for wait in &mut greedy_waits {
            assert!(ready(wait.as_mut()).is_none());
        }
        // The next one goes back to the greedy gateway: it now holds fewer (1 against 2).
        greedy.pop();
        let served: Vec<FairPermit> = greedy_waits
            .iter_mut()
            .filter_map(|w| ready(w.as_mut()))
            .collect();
        assert_eq!(served.len(), 1);
        assert_eq!((pool.held_by("greedy"), pool.held_by("modest")), (2, 2));
    }

    /// The permit of the first ready future of `waits`, which is removed.
    fn take_ready<F: std::future::Future<Output = FairPermit>>(
        waits: &mut Vec<std::pin::Pin<Box<F>>>,
    ) -> Option<FairPermit> {
        for i in 0..waits.len() {
            if let Some(permit) = ready(waits[i].as_mut()) {
                waits.remove(i);
                return Some(permit);
            }
        }
        None
    }

    #[tokio::test]
    async fn equal_holders_take_turns() {
        let pool = FairPermits::new(1);
        let first = pool.acquire("x").await;
        let mut a: Vec<_> = (0..2).map(|_| Box::pin(pool.acquire("a"))).collect();
        let mut b: Vec<_> = (0..2).map(|_| Box::pin(pool.acquire("b"))).collect();
        for wait in a.iter_mut().chain(b.iter_mut()) {
            assert!(ready(wait.as_mut()).is_none());
        }
        // Each returned permit goes to the gateway served least recently: a, b, a, b or
        // b, a, b, a, never the same gateway twice in a row.
        let mut order = Vec::new();
        let mut held = first;
        for _ in 0..4 {
            drop(held);
            let from_a = take_ready(&mut a);
            let from_b = take_ready(&mut b);
            held = match (from_a, from_b) {
                (Some(permit), None) => {
                    order.push('a');
                    permit
                }
                (None, Some(permit)) => {
                    order.push('b');
                    permit
                }
                other => panic!(
                    "exactly one waiter is served: {:?}",
                    (other.0.is_some(), other.1.is_some())
                ),
            };
        }
        assert!(order.windows(2).all(|w| w[0] != w[1]), "{order:?}");
    }

    #[tokio::test]
    async fn a_waiter_that_went_away_passes_its_permit_on() {
        let pool = FairPermits::new(1);
        let only = pool.acquire("a").await;
        let gone = Box::pin(pool.acquire("b"));
        let mut next = Box::pin(pool.acquire("c"));
        let mut gone = gone;
        assert!(ready(gone.as_mut()).is_none());
        assert!(ready(next.as_mut()).is_none());
        drop(gone);
        drop(only);
        // "b" went away, so its turn passed to "c" without leaking the permit.
        let permit = tokio::time::timeout(Duration::from_secs(1), next)
            .await
            .expect("handed on");
        assert_eq!((pool.available(), pool.held_by("c")), (0, 1));
        drop(permit);
        assert_eq!(pool.available(), 1);
    }

    #[tokio::test]
    async fn a_permit_handed_to_a_cancelled_future_is_returned() {
        let pool = FairPermits::new(1);
        let only = pool.acquire("a").await;
        let mut waiting = Box::pin(pool.acquire("b"));
        assert!(ready(waiting.as_mut()).is_none());
        drop(only); // handed to "b"'s channel...
        drop(waiting); // ...which is dropped before reading it
        assert_eq!((pool.available(), pool.held_by("b")), (1, 0));
    }
}
