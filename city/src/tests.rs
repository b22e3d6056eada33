//! City generation tests: determinism, containment, ids, gateways, files.

use std::collections::HashSet;

use camtrail_model::CameraRegistry;

use super::*;

fn small(seed: u64) -> CityConfig {
    CityConfig {
        seed,
        cameras: 5_000,
        districts: 30,
        gateways: 120,
    }
}

fn written(config: &CityConfig) -> (Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().expect("temp dir");
    City::generate(config)
        .write_to_dir(dir.path())
        .expect("writes");
    let csv = std::fs::read(dir.path().join("cameras.csv")).expect("csv");
    let geojson = std::fs::read(dir.path().join("districts.geojson")).expect("geojson");
    (csv, geojson)
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let first = written(&small(7));
    assert_eq!(first, written(&small(7)));
    let other = written(&small(8));
    assert_ne!(first.0, other.0);
    assert_ne!(first.1, other.1);
}

#[test]
fn every_camera_lies_inside_its_district() {
    let city = City::generate(&small(11));
    assert_eq!(city.registry.len(), 5_000);
    assert_eq!(city.districts.len(), 30);
    for (camera, &district) in city.registry.cameras().iter().zip(&city.camera_district) {
        let district = &city.districts[district as usize];
        assert_eq!(camera.district, district.name);
        assert!(district.contains(camera.lon, camera.lat), "{camera:?}");
        assert!(city.district_of(camera.lon, camera.lat).is_some());
    }
}

#[test]
fn ids_are_twenty_digits_and_prefixed_by_the_district_code() {
    let city = City::generate(&small(12));
    let mut seen = HashSet::new();
    for (camera, &district) in city.registry.cameras().iter().zip(&city.camera_district) {
        assert_eq!(camera.camera_id.len(), 20);
        assert!(camera.camera_id.bytes().all(|b| b.is_ascii_digit()));
        let code = city.districts[district as usize].admin_code.to_string();
        assert!(camera.camera_id.starts_with(&code) && &camera.camera_id[10..13] == "131");
        assert!(seen.insert(camera.camera_id.clone()));
        assert!(!camera.road.is_empty());
        assert!((22.4..22.9).contains(&camera.lat) && (113.7..114.6).contains(&camera.lon));
    }
}

#[test]
fn gateways_serve_compact_areas_of_one_district() {
    let city = City::generate(&small(13));
    assert_eq!(city.gateways.len(), 120);
    let cameras = city.registry.cameras();
    let mut served = 0;
    for (index, gateway) in city.gateways.iter().enumerate() {
        assert!(!gateway.cameras.is_empty());
        served += gateway.cameras.len();
        for &camera in &gateway.cameras {
            assert_eq!(city.camera_gateway[camera as usize] as usize, index);
            assert_eq!(
                city.camera_district[camera as usize] as usize,
                gateway.district
            );
            assert_eq!(cameras[camera as usize].gateway_id, gateway.id);
        }
    }
    assert_eq!(served, cameras.len());
}

#[test]
fn files_read_back() {
    let city = City::generate(&small(14));
    let dir = tempfile::tempdir().expect("temp dir");
    city.write_to_dir(dir.path()).expect("writes");
    let registry = CameraRegistry::from_csv_path(&dir.path().join("cameras.csv")).expect("reads");
    assert_eq!(registry.cameras(), city.registry.cameras());
    let text = std::fs::read_to_string(dir.path().join("districts.geojson")).expect("reads");
    let geojson: serde_json::Value = serde_json::from_str(&text).expect("json");
    let features = geojson["features"].as_array().expect("features");
    assert_eq!(features.len(), 30);
    for feature in features {
        let ring = feature["geometry"]["coordinates"][0]
            .as_array()
            .expect("ring");
        assert!(ring.len() >= 4);
        assert_eq!(ring.first(), ring.last(), "closed ring");
    }
    let png = dir.path().join("city.png");
    city.render_png(&png).expect("renders");
    let image = image::open(&png).expect("decodes");
    assert_eq!(image.width(), render::RENDER_WIDTH_PX);
}

#[test]
fn validation_and_clamping() {
    assert!(CityConfig::default().validate().is_ok());
    assert!(
        CityConfig {
            districts: 0,
            ..small(1)
        }
        .validate()
        .is_err()
    );
    assert!(
        CityConfig {
            districts: 100,
            ..small(1)
        }
        .validate()
        .is_err()
    );
    assert!(
        CityConfig {
            gateways: 10,
            ..small(1)
        }
        .validate()
        .is_err()
    );
    assert!(
        CityConfig {
            cameras: 0,
            ..small(1)
        }
        .validate()
        .is_err()
    );
    let tiny = City::generate(&CityConfig {
        seed: 1,
        cameras: 3,
        districts: 5,
        gateways: 1,
    });
    assert_eq!(tiny.registry.len(), 3);
    let served: usize = tiny.gateways.iter().map(|g| g.cameras.len()).sum();
    assert_eq!(served, 3);
}
