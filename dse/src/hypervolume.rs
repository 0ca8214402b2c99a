//! Exact hypervolume (the objective-space volume dominated by a set and bounded by a reference
//! point), all objectives minimised: O(n log n) sweeps in two and three objectives, WFG
//! (While, Bradstreet and Barone 2012) beyond.

use std::collections::BTreeMap;

use crate::pareto::{nondominated, Key};

/// The hypervolume of `pts` with respect to `reference`. Points not strictly better than the
/// reference in every objective contribute nothing and are ignored.
pub fn hypervolume<P: AsRef<[f64]>>(pts: &[P], reference: &[f64]) -> f64 {
    let d = reference.len();
    let inside: Vec<Vec<f64>> = pts
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| p.len() == d && p.iter().zip(reference).all(|(a, r)| a < r))
        .map(|p| p.to_vec())
        .collect();
    if inside.is_empty() {
        return 0.0;
    }
    match d {
        0 => 0.0,
        1 => reference[0] - inside.iter().map(|p| p[0]).fold(f64::INFINITY, f64::min),
        2 => hv2(inside, reference),
        3 => hv3(inside, reference),
        _ => wfg(nondominated_only(inside), reference),
    }
}

/// Two objectives: sort by the first, sweep the staircase.
fn hv2(mut pts: Vec<Vec<f64>>, r: &[f64]) -> f64 {
    pts.sort_unstable_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    let mut area = 0.0;
    let mut y = r[1];
    for p in &pts {
        if p[1] < y {
            area += (r[0] - p[0]) * (y - p[1]);
            y = p[1];
        }
    }
    area
}

/// Three objectives (Beume et al. 2009): sweep along the third objective, keeping the 2-D
/// staircase of the points seen so far in a balanced tree and its area up to date.
fn hv3(mut pts: Vec<Vec<f64>>, r: &[f64]) -> f64 {
    pts.sort_unstable_by(|a, b| a[2].total_cmp(&b[2]));
    let mut stairs: BTreeMap<Key, f64> = BTreeMap::new();
    let mut area = 0.0;
    let mut volume = 0.0;
    for (i, p) in pts.iter().enumerate() {
        area += insert_stair(&mut stairs, p[0], p[1], r);
        let z_next = pts.get(i + 1).map_or(r[2], |q| q[2]);
        volume += area * (z_next - p[2]);
    }
    volume
}

/// Inserts (x, y) into a staircase (x ascending, y strictly descending) bounded by `r` and
/// returns the area it adds.
fn insert_stair(stairs: &mut BTreeMap<Key, f64>, x: f64, y: f64, r: &[f64]) -> f64 {
    let left = stairs.range(..=Key(x)).next_back().map(|(_, &py)| py);
    if left.is_some_and(|py| py <= y) {
        return 0.0;
    }
    let mut height = left.unwrap_or(r[1]);
    let mut cur_x = x;
    let mut added = 0.0;
    let doomed: Vec<(Key, f64)> = stairs
        .range(Key(x)..)
        .take_while(|(_, &sy)| sy >= y)
        .map(|(k, &v)| (*k, v))
        .collect();
    for (k, sy) in doomed {
        added += (k.0 - cur_x) * (height - y);
        cur_x = k.0;
        height = sy;
        stairs.remove(&k);
    }
    let next_x = stairs.range(Key(x)..).next().map_or(r[0], |(k, _)| k.0);
    added += (next_x - cur_x) * (height - y);
    stairs.insert(Key(x), y);
    added
}

fn nondominated_only(pts: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
    let keep = nondominated(&pts);
    let mut out: Vec<Vec<f64>> = keep.into_iter().map(|i| pts[i].clone()).collect();
    out.dedup();
    out
}

/// WFG: the volume is the sum of each point's exclusive contribution against the points after
/// it, which is its box minus the volume of the "limit set" of those points bounded by it.
fn wfg(mut pts: Vec<Vec<f64>>, r: &[f64]) -> f64 {
    let d = r.len();
    if d <= 3 || pts.len() <= 1 {
        return match (d, pts.len()) {
            (_, 0) => 0.0,
            (_, 1) => inclusive(&pts[0], r),
            (2, _) => hv2(pts, r),
            _ => hv3(pts, r),
        };
    }
    // Sorting by the last objective, worst first, keeps limit sets small.
    pts.sort_unstable_by(|a, b| b[d - 1].total_cmp(&a[d - 1]));
    let mut total = 0.0;
    for k in 0..pts.len() {
        let limit: Vec<Vec<f64>> = pts[k + 1..]
            .iter()
            .map(|q| q.iter().zip(&pts[k]).map(|(a, b)| a.max(*b)).collect())
            .collect();
        total += inclusive(&pts[k], r) - wfg(nondominated_only(limit), r);
    }
    total
}

fn inclusive(p: &[f64], r: &[f64]) -> f64 {
    p.iter().zip(r).map(|(a, b)| b - a).product()
}

/// Reference implementation by coordinate compression: the volume of every grid cell dominated
/// by some point. Exponential in the number of objectives; for tests on small sets.
pub fn hypervolume_brute<P: AsRef<[f64]>>(pts: &[P], reference: &[f64]) -> f64 {
    let d = reference.len();
    let pts: Vec<&[f64]> = pts
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| p.iter().zip(reference).all(|(a, r)| a < r))
        .collect();
    let coords: Vec<Vec<f64>> = (0..d)
        .map(|k| {
            let mut c: Vec<f64> = pts.iter().map(|p| p[k]).collect();
            c.push(reference[k]);
            c.sort_by(f64::total_cmp);
            c.dedup();
            c
        })
        .collect();
    let mut idx = vec![0usize; d];
    let mut total = 0.0;
    loop {
        if (0..d).all(|k| idx[k] + 1 < coords[k].len()) {
            let lo: Vec<f64> = (0..d).map(|k| coords[k][idx[k]]).collect();
            if pts.iter().any(|p| p.iter().zip(&lo).all(|(a, b)| a <= b)) {
                total += (0..d)
                    .map(|k| coords[k][idx[k] + 1] - coords[k][idx[k]])
                    .product::<f64>();
            }
        }
        let mut k = 0;
        loop {
            if k == d {
                return total;
            }
            idx[k] += 1;
            if idx[k] + 1 < coords[k].len() {
                break;
            }
            idx[k] = 0;
            k += 1;
        }
    }
}

/// The default reference point: per objective, the worst observed value plus 10% of the
/// observed range (plus 10% of the magnitude, or 0.1, when the range is zero).
pub fn default_reference<P: AsRef<[f64]>>(pts: &[P]) -> Vec<f64> {
    let d = pts.first().map_or(0, |p| p.as_ref().len());
    (0..d)
        .map(|k| {
            let lo = pts
                .iter()
                .map(|p| p.as_ref()[k])
                .fold(f64::INFINITY, f64::min);
            let hi = pts
                .iter()
                .map(|p| p.as_ref()[k])
                .fold(f64::NEG_INFINITY, f64::max);
            let range = hi - lo;
            hi + if range > 0.0 {
                0.1 * range
            } else {
                0.1 * hi.abs().max(1.0)
            }
        })
        .collect()
}
