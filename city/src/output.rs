//! The city on disk: `cameras.csv` (the camera registry format of
//! [`camtrail_model::camera`]) and `districts.geojson` (RFC 7946 FeatureCollection, one
//! Polygon feature per district).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde_json::json;

use crate::City;

/// Write `cameras.csv` and `districts.geojson` into `dir` (created if missing).
pub(crate) fn write_to_dir(city: &City, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut csv = BufWriter::new(File::create(dir.join("cameras.csv"))?);
    city.registry.write_csv(&mut csv)?;
    csv.flush()?;
    let mut geojson = BufWriter::new(File::create(dir.join("districts.geojson"))?);
    serde_json::to_writer_pretty(&mut geojson, &districts_geojson(city))?;
    geojson.write_all(b"\n")?;
    geojson.flush()
}

/// The districts as a GeoJSON FeatureCollection; each feature's properties give the name,
/// admin code, centre and camera and gateway counts.
pub(crate) fn districts_geojson(city: &City) -> serde_json::Value {
    let mut camera_counts = vec![0usize; city.districts.len()];
    for &district in &city.camera_district {
        camera_counts[district as usize] += 1;
    }
    let mut gateway_counts = vec![0usize; city.districts.len()];
    for gateway in &city.gateways {
        gateway_counts[gateway.district] += 1;
    }
    let mut features = Vec::with_capacity(city.districts.len());
    for (index, district) in city.districts.iter().enumerate() {
        let mut ring: Vec<[f64; 2]> = district.polygon.iter().map(|&(x, y)| [x, y]).collect();
        if let Some(&first) = ring.first() {
            ring.push(first);
        }
        features.push(json!({
            "type": "Feature",
            "properties": {
                "name": district.name,
                "admin_code": district.admin_code.to_string(),
                "centre": [district.centre.0, district.centre.1],
                "cameras": camera_counts[index],
                "gateways": gateway_counts[index],
            },
            "geometry": { "type": "Polygon", "coordinates": [ring] },
        }));
    }
    json!({ "type": "FeatureCollection", "features": features })
}
