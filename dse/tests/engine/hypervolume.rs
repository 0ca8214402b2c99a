use dse::hypervolume::{default_reference, hypervolume, hypervolume_brute};
use dse::pareto::nondominated;

use crate::{random_continuous, random_points};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-10 * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn analytic_values() {
    // One point: its box.
    assert!(close(hypervolume(&[vec![0.25, 0.5]], &[1.0, 1.0]), 0.375));
    assert!(close(
        hypervolume(&[vec![0.5, 0.5, 0.5]], &[1.0, 1.0, 1.0]),
        0.125
    ));
    assert!(close(
        hypervolume(&[vec![0.5; 5]], &[1.0; 5]),
        0.5f64.powi(5)
    ));
    // Two boxes overlapping in a known region (2-D): 0.5 + 0.5 - 0.25.
    assert!(close(
        hypervolume(&[vec![0.0, 0.5], vec![0.5, 0.0]], &[1.0, 1.0]),
        0.75
    ));
    // The 3-D corner staircase: unit cube minus the three corners' complement.
    let pts = vec![
        vec![0.0, 0.5, 0.5],
        vec![0.5, 0.0, 0.5],
        vec![0.5, 0.5, 0.0],
    ];
    // Union of three boxes of volume 0.25 each, pairwise overlaps 0.125, triple 0.125.
    assert!(close(
        hypervolume(&pts, &[1.0, 1.0, 1.0]),
        3.0 * 0.25 - 3.0 * 0.125 + 0.125
    ));
    // 4-D: the same construction, inclusion-exclusion over 4 boxes of 1/8 each.
    let pts: Vec<Vec<f64>> = (0..4)
        .map(|k| (0..4).map(|j| if j == k { 0.0 } else { 0.5 }).collect())
        .collect();
    let want = 4.0 * 0.125 - 6.0 * 0.0625 + 4.0 * 0.0625 - 0.0625;
    assert!(close(hypervolume(&pts, &[1.0; 4]), want));
    // Points outside the reference box contribute nothing.
    assert_eq!(hypervolume(&[vec![2.0, 0.0]], &[1.0, 1.0]), 0.0);
    assert_eq!(hypervolume::<Vec<f64>>(&[], &[1.0, 1.0]), 0.0);
}

#[test]
fn matches_brute_force_in_2_to_5_objectives() {
    for m in 2..=5 {
        let n = [0, 0, 60, 30, 12, 8][m];
        for seed in 0..20 {
            let mut pts = random_continuous(seed * 7 + m as u64, n, m);
            pts.extend(random_points(seed, n / 2, m, 4));
            let r = vec![1.05; m];
            let (a, b) = (hypervolume(&pts, &r), hypervolume_brute(&pts, &r));
            assert!(close(a, b), "m = {m}, seed {seed}: {a} vs brute {b}");
        }
    }
}

#[test]
fn only_the_front_matters() {
    let pts = random_continuous(9, 500, 3);
    let front: Vec<Vec<f64>> = nondominated(&pts)
        .into_iter()
        .map(|i| pts[i].clone())
        .collect();
    let r = [1.0, 1.0, 1.0];
    assert!(close(hypervolume(&pts, &r), hypervolume(&front, &r)));
}

#[test]
fn default_reference_is_worst_plus_ten_percent_of_range() {
    let r = default_reference(&[vec![0.0, 10.0], vec![1.0, 30.0]]);
    assert!(close(r[0], 1.1) && close(r[1], 32.0), "{r:?}");
}
