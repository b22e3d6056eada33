//! The dispatcher: pulls events from the generator at the paced rate, routes each to the
//! gateway that serves its camera, cuts batches (full, or older than the linger time) and
//! hands them to the gateway streams over bounded channels.
//!
//! Events are pulled only when they may be sent, so memory stays bounded by the gateways'
//! partial batches, their one-slot channels and their in-flight windows. A gateway whose
//! stream is not taking batches blocks the dispatcher (and so every gateway): the offered
//! rate drops, which is what the report then shows.

use std::time::Duration;

use tokio::time::Instant;

use camtrail_city::SyntheticEvent;
use camtrail_model::CameraRegistry;
use camtrail_proto::convert::object_class_to_wire;
use camtrail_proto::gat1400::codes::direction_of_heading;
use camtrail_proto::v1::{BoundingBox, DetectionEvent};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::rate::Pacer;

/// Most events pulled between two yields to the runtime, so a fast generator does not
/// hold a worker thread for long.
const PULL_CHUNK: u64 = 256;

/// Gateway routing: which gateway lane serves each camera of the registry.
///
/// With a gateway limit, an event seen by a camera of an unused gateway is given to a
/// camera of a used one (chosen by index), so the offered rate does not shrink with the
/// limit; the routes of such events are no longer realistic, their ids stay unique.
#[derive(Debug, Clone)]
pub struct Routes {
    /// Gateway ids in order of first appearance in the registry (truncated to the limit).
    pub gateway_ids: Vec<String>,
    /// Per camera (registry order): lane index, or `None` when its gateway is not used.
    lane_of_camera: Vec<Option<u32>>,
    /// Indices of the cameras whose gateway is used, ascending.
    used_cameras: Vec<u32>,
}

impl Routes {
    /// Route the registry's cameras to its first `limit` gateways (all when `None`).
    pub fn new(registry: &CameraRegistry, limit: Option<usize>) -> Self {
        let mut gateway_ids: Vec<String> = Vec::new();
        let mut index_of: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
        let mut lane_of_camera = Vec::with_capacity(registry.len());
        for camera in registry.cameras() {
            let lane = match index_of.get(camera.gateway_id.as_str()) {
                Some(&lane) => Some(lane),
                None if limit.is_none_or(|limit| gateway_ids.len() < limit) => {
                    let lane = gateway_ids.len() as u32;
                    index_of.insert(&camera.gateway_id, lane);
                    gateway_ids.push(camera.gateway_id.clone());
                    Some(lane)
                }
                None => None,
            };
            lane_of_camera.push(lane);
        }
        let used_cameras = (0..lane_of_camera.len() as u32)
            .filter(|&camera| lane_of_camera[camera as usize].is_some())
            .collect();
        Self {
            gateway_ids,
            lane_of_camera,
            used_cameras,
        }
    }

    /// The camera an event of `camera_index` is sent as, and its gateway lane; `None` for
    /// indices outside the registry.
    pub fn resolve(&self, camera_index: u32) -> Option<(u32, usize)> {
        match self.lane_of_camera.get(camera_index as usize)? {
            Some(lane) => Some((camera_index, *lane as usize)),
            None => {
                let used = self.used_cameras.len();
                let camera = *self.used_cameras.get(camera_index as usize % used.max(1))?;
                let lane = self
                    .lane_of_camera
                    .get(camera as usize)
                    .copied()
                    .flatten()?;
                Some((camera, lane as usize))
            }
        }
    }
}

/// The wire form of a synthetic event; `shift_ms` is added to its capture time.
pub fn to_wire(event: SyntheticEvent, camera_id: &str, shift_ms: i64) -> DetectionEvent {
    let [x, y, width, height] = event.bbox;
    DetectionEvent {
        event_id: event.event_id.to_vec(),
        camera_id: camera_id.to_string(),
        captured_at_ms: event.captured_at_ms.saturating_add(shift_ms),
        object_class: object_class_to_wire(event.object_class) as i32,
        plate: event.plate,
        plate_confidence: event.plate_confidence,
        subject_key: event.subject_key,
        vehicle_color: i32::from(event.vehicle_color),
        vehicle_type: i32::from(event.vehicle_type),
        bbox: Some(BoundingBox {
            x,
            y,
            width,
            height,
        }),
        snapshot: event
            .snapshot
            .map(|bytes| bytes.to_vec())
            .unwrap_or_default(),
        plate_color: i32::from(event.plate_color),
        vehicle_brand: event.brand.to_string(),
        direction: direction_of_heading(event.heading_deg) as i32,
        speed_kmh: event.speed_kmh,
        plate_char_confidence: event.plate_char_confidence,
    }
}

/// A gateway's partial batch and the channel to its stream.
struct Lane {
    batches_tx: mpsc::Sender<Vec<DetectionEvent>>,
    pending: Vec<DetectionEvent>,
    started_at: Instant,
}

/// Why the dispatcher stopped offering events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `max_events` reached.
    EventLimit,
    /// `duration` elapsed.
    Duration,
    /// The event iterator ended.
    Exhausted,
    /// Shutdown requested, or the run was aborted.
    Shutdown,
}

/// Limits and batching of the dispatcher.
#[derive(Debug, Clone)]
pub(crate) struct DispatchSettings {
    pub batch_size: usize,
    pub linger: Duration,
    pub max_events: Option<u64>,
    pub deadline: Option<Instant>,
    pub pacer: Option<Pacer>,
    pub shift_timestamps: bool,
}

/// What the dispatcher did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DispatchOutcome {
    pub offered: u64,
    pub stop: StopReason,
    pub pacing_forgiven: u64,
}

/// Pulls, routes and batches events.
pub(crate) struct Dispatcher<'a> {
    registry: &'a CameraRegistry,
    routes: &'a Routes,
    lanes: Vec<Lane>,
    settings: DispatchSettings,
    origin: Instant,
    offered: u64,
    /// Shutdown: stop offering, and stop waiting for a saturated stream.
    stop: CancellationToken,
}

impl<'a> Dispatcher<'a> {
    pub fn new(
        registry: &'a CameraRegistry,
        routes: &'a Routes,
        senders: Vec<mpsc::Sender<Vec<DetectionEvent>>>,
        settings: DispatchSettings,
        origin: Instant,
        stop: CancellationToken,
    ) -> Self {
        let lanes = senders
            .into_iter()
            .map(|batches_tx| Lane {
                batches_tx,
                pending: Vec::new(),
                started_at: origin,
            })
            .collect();
        Self {
            registry,
            routes,
            lanes,
            settings,
            origin,
            offered: 0,
            stop,
        }
    }

    /// Offer events until a limit, the end of the iterator, shutdown or abort; then flush the
    /// partial batches and close the lanes (dropping the senders).
    pub async fn run(
        mut self,
        mut events: impl Iterator<Item = SyntheticEvent>,
    ) -> DispatchOutcome {
        let stop = self.offer(&mut events).await;
        if stop != StopReason::Shutdown {
            for lane in 0..self.lanes.len() {
                if !self.flush(lane).await {
                    break;
                }
            }
        }
        DispatchOutcome {
            offered: self.offered,
            stop,
            pacing_forgiven: self.settings.pacer.as_ref().map_or(0, Pacer::forgiven),
        }
    }

    async fn offer(&mut self, events: &mut impl Iterator<Item = SyntheticEvent>) -> StopReason {
        loop {
            if self.stop.is_cancelled() {
                return StopReason::Shutdown;
            }
            let now = Instant::now();
            if self
                .settings
                .deadline
                .is_some_and(|deadline| now >= deadline)
            {
                return StopReason::Duration;
            }
            let remaining = self
                .settings
                .max_events
                .map_or(u64::MAX, |max| max.saturating_sub(self.offered));
            if remaining == 0 {
                return StopReason::EventLimit;
            }
            let allowance = match &mut self.settings.pacer {
                Some(pacer) => pacer.allowance(now),
                None => u64::MAX,
            };
            if allowance == 0 {
                if !self.wait_for_schedule().await {
                    return StopReason::Shutdown;
                }
                continue;
            }
            let wanted = allowance.min(remaining).min(PULL_CHUNK);
            match self.pull(events, wanted).await {
                Pulled::Some(count) => {
                    if let Some(pacer) = &mut self.settings.pacer {
                        pacer.record(count);
                    }
                }
                Pulled::Exhausted => return StopReason::Exhausted,
                Pulled::Aborted => return StopReason::Shutdown,
            }
            if !self.flush_lingering().await {
                return StopReason::Shutdown;
            }
            tokio::task::yield_now().await;
        }
    }

    /// Sleep until the pacer's next event (at least a millisecond, the timer's grain),
    /// flushing lingering batches meanwhile. False on shutdown.
    async fn wait_for_schedule(&mut self) -> bool {
        let next_due = self
            .settings
            .pacer
            .as_ref()
            .map_or_else(Instant::now, Pacer::next_due);
        let wake = next_due.max(Instant::now() + Duration::from_millis(1));
        let wake = self
            .settings
            .deadline
            .map_or(wake, |deadline| wake.min(deadline.max(Instant::now())));
        tokio::select! {
            _ = self.stop.cancelled() => return false,
            _ = tokio::time::sleep_until(wake) => {}
        }
        self.flush_lingering().await
    }

    /// Pull up to `wanted` routed events (skipped ones do not count, but at most
    /// 4 × [`PULL_CHUNK`] are looked at per call).
    async fn pull(
        &mut self,
        events: &mut impl Iterator<Item = SyntheticEvent>,
        wanted: u64,
    ) -> Pulled {
        let mut count = 0;
        let mut looked_at = 0;
        while count < wanted && looked_at < 4 * PULL_CHUNK {
            let Some(event) = events.next() else {
                return if count > 0 {
                    Pulled::Some(count)
                } else {
                    Pulled::Exhausted
                };
            };
            looked_at += 1;
            let Some((camera_index, lane)) = self.routes.resolve(event.camera_index) else {
                continue;
            };
            let Some(camera) = self.registry.cameras().get(camera_index as usize) else {
                continue;
            };
            let now = Instant::now();
            let shift_ms = if self.settings.shift_timestamps {
                now.saturating_duration_since(self.origin).as_millis() as i64
            } else {
                0
            };
            let wire = to_wire(event, &camera.camera_id, shift_ms);
            let lane_state = &mut self.lanes[lane];
            if lane_state.pending.is_empty() {
                lane_state.started_at = now;
            }
            lane_state.pending.push(wire);
            count += 1;
            self.offered += 1;
            if self.lanes[lane].pending.len() >= self.settings.batch_size && !self.flush(lane).await
            {
                return Pulled::Aborted;
            }
        }
        Pulled::Some(count)
    }

    /// Send the partial batches that have waited longer than the linger time.
    async fn flush_lingering(&mut self) -> bool {
        let now = Instant::now();
        for lane in 0..self.lanes.len() {
            let waited = now.saturating_duration_since(self.lanes[lane].started_at);
            if !self.lanes[lane].pending.is_empty()
                && waited >= self.settings.linger
                && !self.flush(lane).await
            {
                return false;
            }
        }
        true
    }

    /// Hand a lane's partial batch to its stream, waiting while the stream is saturated.
    /// False on shutdown or when the stream is gone (its gateway failed).
    async fn flush(&mut self, lane: usize) -> bool {
        let batch = std::mem::take(&mut self.lanes[lane].pending);
        if batch.is_empty() {
            return true;
        }
        let batches_tx = &self.lanes[lane].batches_tx;
        tokio::select! {
            _ = self.stop.cancelled() => false,
            sent = batches_tx.send(batch) => sent.is_ok(),
        }
    }
}

enum Pulled {
    Some(u64),
    Exhausted,
    Aborted,
}

#[cfg(test)]
mod tests {
    use super::*;
    use camtrail_model::{Camera, ObjectClass};

    pub(crate) fn registry(cameras_per_gateway: &[usize]) -> CameraRegistry {
        let mut cameras = Vec::new();
        for (gateway, &count) in cameras_per_gateway.iter().enumerate() {
            for serial in 0..count {
                cameras.push(Camera {
                    camera_id: format!("cam-{gateway}-{serial}"),
                    district: "Futian".into(),
                    lat: 22.5,
                    lon: 114.0,
                    heading_deg: 0.0,
                    road: "Shennan Rd".into(),
                    gateway_id: format!("gw-{gateway}"),
                });
            }
        }
        CameraRegistry::new(cameras).expect("valid registry")
    }

    fn event(id: u64, camera_index: u32) -> SyntheticEvent {
        let mut event_id = [0u8; 16];
        event_id[8..].copy_from_slice(&id.to_be_bytes());
        SyntheticEvent {
            event_id,
            camera_index,
            captured_at_ms: 1_000,
            object_class: ObjectClass::Vehicle,
            plate: "粤B·12345".into(),
            plate_confidence: 0.9,
            subject_key: String::new(),
            vehicle_color: 1,
            vehicle_type: 1,
            bbox: [1, 2, 3, 4],
            snapshot: None,
            plate_color: 1,
            brand: "BYD",
            heading_deg: 92.0,
            speed_kmh: 41.5,
            plate_char_confidence: vec![90, 91, 92, 93, 94, 95, 96],
        }
    }

    #[test]
    fn routes_follow_first_appearance_and_the_limit() {
        let registry = registry(&[2, 1, 3]);
        let all = Routes::new(&registry, None);
        assert_eq!(all.gateway_ids, ["gw-0", "gw-1", "gw-2"]);
        assert_eq!(all.resolve(0), Some((0, 0)));
        assert_eq!(all.resolve(2), Some((2, 1)));
        assert_eq!(all.resolve(5), Some((5, 2)));
        assert_eq!(all.resolve(6), None);
        let two = Routes::new(&registry, Some(2));
        assert_eq!(two.gateway_ids, ["gw-0", "gw-1"]);
        assert_eq!(two.resolve(1), Some((1, 0)));
        // Cameras 3..6 belong to gw-2: re-assigned to the used cameras 0, 1, 2 by index.
        assert_eq!(two.resolve(3), Some((0, 0)));
        assert_eq!(two.resolve(5), Some((2, 1)));
        assert_eq!(two.resolve(6), None);
    }

    #[test]
    fn wire_events_carry_every_field() {
        let wire = to_wire(event(7, 0), "cam-0-0", 500);
        assert_eq!(wire.event_id.len(), 16);
        assert_eq!(wire.camera_id, "cam-0-0");
        assert_eq!(wire.captured_at_ms, 1_500);
        assert_eq!(wire.object_class, 1);
        assert_eq!(
            wire.bbox,
            Some(BoundingBox {
                x: 1,
                y: 2,
                width: 3,
                height: 4
            })
        );
        assert!(wire.snapshot.is_empty());
        assert_eq!(wire.plate_color, 1);
        assert_eq!(wire.vehicle_brand, "BYD");
        assert_eq!(wire.direction, camtrail_proto::v1::Direction::East as i32);
        assert_eq!(wire.speed_kmh, 41.5);
        assert_eq!(wire.plate_char_confidence.len(), 7);
    }

    #[tokio::test]
    async fn batches_are_cut_at_size_per_gateway_and_flushed_at_the_end() {
        let registry = registry(&[1, 1]);
        let routes = Routes::new(&registry, None);
        let (tx0, mut rx0) = mpsc::channel(16);
        let (tx1, mut rx1) = mpsc::channel(16);
        let settings = DispatchSettings {
            batch_size: 3,
            linger: Duration::from_secs(60),
            max_events: Some(8),
            deadline: None,
            pacer: None,
            shift_timestamps: false,
        };
        let dispatcher = Dispatcher::new(
            &registry,
            &routes,
            vec![tx0, tx1],
            settings,
            Instant::now(),
            CancellationToken::new(),
        );
        // Camera 0 → gw-0, camera 1 → gw-1, camera 9 → unknown (skipped, not counted).
        let events = (0..20u64).map(|i| event(i, [0, 1, 0, 9][i as usize % 4]));
        let outcome = dispatcher.run(events).await;
        assert_eq!(outcome.stop, StopReason::EventLimit);
        assert_eq!(outcome.offered, 8);
        let mut sizes0 = Vec::new();
        while let Ok(batch) = rx0.try_recv() {
            sizes0.push(batch.len());
        }
        let mut sizes1 = Vec::new();
        while let Ok(batch) = rx1.try_recv() {
            assert!(batch.iter().all(|e| e.camera_id == "cam-1-0"));
            sizes1.push(batch.len());
        }
        assert_eq!(sizes0, [3, 2]);
        assert_eq!(sizes1, [3]);
    }

    #[tokio::test(start_paused = true)]
    async fn partial_batches_go_out_after_the_linger_time() {
        let registry = registry(&[1]);
        let routes = Routes::new(&registry, None);
        let (tx, mut rx) = mpsc::channel(16);
        let origin = Instant::now();
        let settings = DispatchSettings {
            batch_size: 1_000,
            linger: Duration::from_millis(50),
            max_events: None,
            deadline: Some(origin + Duration::from_millis(500)),
            pacer: Some(Pacer::new(100.0, origin)),
            shift_timestamps: true,
        };
        let dispatcher = Dispatcher::new(
            &registry,
            &routes,
            vec![tx],
            settings,
            origin,
            CancellationToken::new(),
        );
        let outcome = dispatcher.run((0..).map(|i| event(i, 0))).await;
        assert_eq!(outcome.stop, StopReason::Duration);
        let mut batches = Vec::new();
        while let Ok(batch) = rx.try_recv() {
            batches.push(batch);
        }
        let total: usize = batches.iter().map(Vec::len).sum();
        assert_eq!(total as u64, outcome.offered);
        assert!(
            (45..=51).contains(&total),
            "100 events/s for 0.5 s, got {total}"
        );
        assert!(
            batches.len() >= 8,
            "linger cuts ~every 50 ms: {} batches",
            batches.len()
        );
        assert!(batches.iter().all(|b| b.len() <= 6));
    }

    proptest::proptest! {
        #[test]
        fn every_event_reaches_its_gateway_once_in_order(
            cameras in proptest::collection::vec(0u32..7, 0..300),
            batch_size in 1usize..20,
        ) {
            // Cameras 0..6 of gateways gw-0 (0, 1), gw-1 (2), gw-2 (3, 4, 5); 6 is unknown.
            let registry = registry(&[2, 1, 3]);
            let routes = Routes::new(&registry, None);
            let channels: Vec<_> = (0..3).map(|_| mpsc::channel(1_000)).collect();
            let (senders, mut receivers): (Vec<_>, Vec<_>) = channels.into_iter().unzip();
            let settings = DispatchSettings {
                batch_size,
                linger: Duration::from_secs(3_600),
                max_events: None,
                deadline: None,
                pacer: None,
                shift_timestamps: false,
            };
            let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
            let events = cameras.iter().enumerate().map(|(id, &camera)| event(id as u64, camera));
            let outcome = runtime.block_on(
                Dispatcher::new(&registry, &routes, senders, settings, Instant::now(), CancellationToken::new())
                    .run(events),
            );
            let known: Vec<(usize, u32)> = cameras.iter().copied().enumerate().filter(|&(_, c)| c < 6).collect();
            proptest::prop_assert_eq!(outcome.offered, known.len() as u64);
            for (lane, receiver) in receivers.iter_mut().enumerate() {
                let mut batches = Vec::new();
                while let Ok(batch) = receiver.try_recv() {
                    batches.push(batch);
                }
                let expected: Vec<Vec<u8>> = known
                    .iter()
                    .filter(|&&(_, camera)| routes.resolve(camera).map(|(_, l)| l) == Some(lane))
                    .map(|&(id, _)| event(id as u64, 0).event_id.to_vec())
                    .collect();
                let got: Vec<Vec<u8>> = batches.iter().flatten().map(|e| e.event_id.clone()).collect();
                proptest::prop_assert_eq!(got, expected);
                if let Some((last, full)) = batches.split_last() {
                    proptest::prop_assert!(full.iter().all(|b| b.len() == batch_size));
                    proptest::prop_assert!(!last.is_empty() && last.len() <= batch_size);
                }
            }
        }
    }
}
