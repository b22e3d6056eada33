//! Gateways: each serves the cameras of one compact area inside one district.
//!
//! Gateways are shared out among districts in proportion to their cameras (at least one per
//! district that has cameras); a district's cameras are then split into that many areas of
//! nearly equal size by recursive bisection along the longer side of their bounding box.

use crate::cameras::device_id;
use crate::geometry::Point;

/// GB/T 28181 type code used for gateway ids (118: network video recorder, the edge box
/// that aggregates an area's cameras).
pub const GATEWAY_TYPE_CODE: u16 = 118;

/// One edge gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// Gateway id (20 digits, the district's admin code first), as in the registry.
    pub id: String,
    /// Index into [`crate::City::districts`].
    pub district: usize,
    /// Indices into the registry's cameras of the cameras it serves, ascending.
    pub cameras: Vec<u32>,
}

/// Share `wanted` gateways among districts and assign every camera to one.
///
/// `camera_district[i]` is camera i's district; `admin_codes[d]` district d's admin code.
/// Returns the gateways and, per camera, the index of its gateway.
pub(crate) fn assign(
    wanted: usize,
    camera_district: &[usize],
    points: &[Point],
    admin_codes: &[u32],
) -> (Vec<Gateway>, Vec<u32>) {
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); admin_codes.len()];
    for (camera, &district) in camera_district.iter().enumerate() {
        members[district].push(camera as u32);
    }
    let sizes: Vec<usize> = members.iter().map(Vec::len).collect();
    let shares = apportion(wanted, &sizes);
    let mut gateways = Vec::new();
    let mut gateway_of = vec![0u32; camera_district.len()];
    for (district, mut cameras) in members.into_iter().enumerate() {
        let mut areas = Vec::with_capacity(shares[district]);
        bisect(&mut cameras, shares[district], points, &mut areas);
        for (serial, mut area) in areas.into_iter().enumerate() {
            area.sort_unstable();
            for &camera in &area {
                gateway_of[camera as usize] = gateways.len() as u32;
            }
            let id = device_id(admin_codes[district], GATEWAY_TYPE_CODE, serial as u32 + 1);
            gateways.push(Gateway {
                id,
                district,
                cameras: area,
            });
        }
    }
    (gateways, gateway_of)
}

/// Largest-remainder apportionment of `total` seats by `sizes`, at least one seat per
/// non-empty entry and never more seats than members.
fn apportion(total: usize, sizes: &[usize]) -> Vec<usize> {
    let members: usize = sizes.iter().sum();
    let mut seats: Vec<usize> = sizes.iter().map(|&s| usize::from(s > 0)).collect();
    let base: usize = seats.iter().sum();
    if members == 0 || total <= base {
        return seats;
    }
    let spare = (total - base).min(members - base);
    let mut remainders = Vec::with_capacity(sizes.len());
    let mut given = 0;
    for (index, &size) in sizes.iter().enumerate() {
        let quota = spare as f64 * size as f64 / members as f64;
        let whole = (quota.floor() as usize).min(size - seats[index].min(size));
        seats[index] += whole;
        given += whole;
        remainders.push((quota - quota.floor(), index));
    }
    remainders.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
    for &(_, index) in remainders.iter().cycle().take(remainders.len() * 2) {
        if given >= spare {
            break;
        }
        if seats[index] < sizes[index] {
            seats[index] += 1;
            given += 1;
        }
    }
    seats
}

/// Split `cameras` into `parts` compact groups of nearly equal size.
fn bisect(cameras: &mut [u32], parts: usize, points: &[Point], out: &mut Vec<Vec<u32>>) {
    if parts <= 1 || cameras.len() <= 1 {
        if !cameras.is_empty() || parts == 1 {
            out.push(cameras.to_vec());
        }
        return;
    }
    let (mut min_x, mut max_x, mut min_y, mut max_y) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &camera in cameras.iter() {
        let p = points[camera as usize];
        (min_x, max_x) = (min_x.min(p.x), max_x.max(p.x));
        (min_y, max_y) = (min_y.min(p.y), max_y.max(p.y));
    }
    let along_x = max_x - min_x >= max_y - min_y;
    let key = |camera: u32| {
        let p = points[camera as usize];
        if along_x { p.x } else { p.y }
    };
    cameras.sort_unstable_by(|&a, &b| key(a).total_cmp(&key(b)).then(a.cmp(&b)));
    let left_parts = parts / 2;
    let split = cameras.len() * left_parts / parts;
    let (left, right) = cameras.split_at_mut(split);
    bisect(left, left_parts, points, out);
    bisect(right, parts - left_parts, points, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apportionment_hits_the_total() {
        assert_eq!(apportion(10, &[50, 30, 20]), vec![5, 3, 2]);
        assert_eq!(apportion(2, &[50, 0, 20]), vec![1, 0, 1]);
        assert_eq!(apportion(300, &[3, 1000]).iter().sum::<usize>(), 300);
        assert_eq!(apportion(300, &[3, 4]), vec![3, 4]);
    }

    #[test]
    fn every_camera_gets_one_gateway() {
        let points: Vec<Point> = (0..100)
            .map(|i| Point::new(i as f64, (i % 7) as f64))
            .collect();
        let districts: Vec<usize> = (0..100).map(|i| i % 3).collect();
        let (gateways, gateway_of) = assign(9, &districts, &points, &[440_301, 440_302, 440_303]);
        assert_eq!(gateways.len(), 9);
        let served: usize = gateways.iter().map(|g| g.cameras.len()).sum();
        assert_eq!(served, 100);
        for (camera, &gateway) in gateway_of.iter().enumerate() {
            assert!(
                gateways[gateway as usize]
                    .cameras
                    .contains(&(camera as u32))
            );
            assert_eq!(gateways[gateway as usize].district, districts[camera]);
        }
    }
}
