// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

//! Generator throughput: synthetic events per second on one core, over the default
//! 140,000-camera city. Issue 3 requires ≥ 1,000,000 events/s with snapshots off.

use std::hint::black_box;

use camtrail_city::{City, CityConfig, Traffic, TrafficConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Events per measured iteration.
const BATCH: u64 = 100_000;

fn traffic(c: &mut Criterion) {
    let city = City::generate(&CityConfig::default());
    let mut group = c.benchmark_group("traffic");
    group.throughput(Throughput::Elements(BATCH));
    for (name, snapshot_share) in [
        ("events_no_snapshots", 0.0),
        ("events_10pct_snapshots", 0.1),
    ] {
        let config = TrafficConfig {
            vehicles: usize::MAX,
            snapshot_share,
            ..Default::default()
        };
        let mut events = Traffic::new(&city, config);
        group.bench_function(name, |b| {
            b.iter(|| {
                for event in events.by_ref().take(BATCH as usize) {
                    black_box(event);
                }
            })
        });
    }
    group.finish();
}

fn city(c: &mut Criterion) {
    let mut group = c.benchmark_group("city");
    group.sample_size(10);
    let config = CityConfig::default();
    group.throughput(Throughput::Elements(config.cameras as u64));
    group.bench_function("generate_140k_cameras", |b| {
        b.iter(|| City::generate(black_box(&config)))
    });
    group.finish();
}

criterion_group!(benches, traffic, city);
criterion_main!(benches);
