//! One scene: the distinct vehicles that passed its cameras in its window.
//!
//! Vehicles are told apart by the stored subject key (the normalised plate, or an upstream
//! key); a sighting without one cannot be told apart from anyone and is only counted. A
//! listing runs by the time each vehicle was first seen there, then by key, and pages by that
//! pair (keyset, so a page boundary never splits or repeats a vehicle).

use camtrail_storage::StoredSighting;

/// One vehicle at one scene.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneVehicle {
    /// Stored subject key.
    pub key: String,
    /// The plate as most often read there.
    pub plate: String,
    /// First seen there, unix ms.
    pub first_ms: i64,
    /// Its sightings there, in time order.
    pub sightings: Vec<StoredSighting>,
}

/// Where a page of scene vehicles ends: the next page starts after `(first_ms, key)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct VehicleCursor {
    /// First sighting of the last vehicle returned, unix ms.
    pub first_ms: i64,
    /// Its key.
    pub key: String,
}

impl VehicleCursor {
    /// `<first_ms>:<key as hex>`: opaque to clients, ASCII only.
    pub fn encode(&self) -> String {
        format!("{}:{}", self.first_ms, hex::encode(self.key.as_bytes()))
    }

    /// Parse [`VehicleCursor::encode`]'s text; `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        let (ms, key) = text.split_once(':')?;
        Some(Self {
            first_ms: ms.parse().ok()?,
            key: String::from_utf8(hex::decode(key).ok()?).ok()?,
        })
    }
}

/// Group time-ordered `rows` by vehicle: the vehicles in `(first_ms, key)` order, and the
/// number of sightings without a key.
pub fn group_by_vehicle(rows: Vec<StoredSighting>) -> (Vec<SceneVehicle>, usize) {
    let mut unkeyed = 0;
    let mut by_key: std::collections::HashMap<String, Vec<StoredSighting>> =
        std::collections::HashMap::new();
    for row in rows {
        if row.subject_key.is_empty() {
            unkeyed += 1;
        } else {
            by_key.entry(row.subject_key.clone()).or_default().push(row);
        }
    }
    let mut vehicles: Vec<SceneVehicle> = by_key
        .into_iter()
        .map(|(key, mut sightings)| {
            sightings.sort_by(|a, b| {
                (a.captured_at_ms, a.event_id).cmp(&(b.captured_at_ms, b.event_id))
            });
            SceneVehicle {
                plate: super::usual_plate(&sightings),
                first_ms: sightings.first().map_or(i64::MIN, |s| s.captured_at_ms),
                key,
                sightings,
            }
        })
        .collect();
    vehicles.sort_by(|a, b| (a.first_ms, &a.key).cmp(&(b.first_ms, &b.key)));
    (vehicles, unkeyed)
}

/// The page of `vehicles` (in `(first_ms, key)` order) after `after`, at most `limit`, and
/// the cursor of the next page when more follow.
pub fn page(
    vehicles: Vec<SceneVehicle>,
    after: Option<&VehicleCursor>,
    limit: usize,
) -> (Vec<SceneVehicle>, Option<VehicleCursor>) {
    let mut rest: Vec<SceneVehicle> = vehicles
        .into_iter()
        .filter(|v| after.is_none_or(|c| (v.first_ms, &v.key) > (c.first_ms, &c.key)))
        .collect();
    let next = (rest.len() > limit).then(|| {
        let last = &rest[limit - 1];
        VehicleCursor {
            first_ms: last.first_ms,
            key: last.key.clone(),
        }
    });
    rest.truncate(limit);
    (rest, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::test_support::seen;

    #[test]
    fn vehicles_group_order_and_page_without_gaps_or_repeats() {
        let mut rows = vec![
            seen(1, "粤B1", "c1", 10),
            seen(2, "粤B2", "c2", 5),
            seen(3, "粤B1", "c2", 20),
            seen(4, "", "c1", 7),
            seen(5, "粤B3", "c1", 5),
            seen(6, "粤B4", "c3", 30),
        ];
        rows[2].plate = "粤B·1".into();
        rows.sort_by_key(|r| r.captured_at_ms);
        let (vehicles, unkeyed) = group_by_vehicle(rows);
        assert_eq!(unkeyed, 1);
        let keys: Vec<&str> = vehicles.iter().map(|v| v.key.as_str()).collect();
        // 粤B2 and 粤B3 were both first seen at 5 s: by key.
        assert_eq!(keys, ["粤B2", "粤B3", "粤B1", "粤B4"]);
        assert_eq!(vehicles[2].sightings.len(), 2);
        let mut seen_keys = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = page(vehicles.clone(), after.as_ref(), 3);
            seen_keys.extend(page.into_iter().map(|v| v.key));
            match next {
                Some(cursor) => {
                    let text = cursor.encode();
                    assert!(text.is_ascii());
                    after = Some(VehicleCursor::decode(&text).expect("round trip"));
                }
                None => break,
            }
        }
        assert_eq!(seen_keys, keys);
        assert_eq!(VehicleCursor::decode("12:zz"), None);
        assert_eq!(VehicleCursor::decode("x:00"), None);
    }
}
