use dse::pareto::{
    constrained_ranks, crowding_distance, dominates, knee, naive_ranks, nondominated, ranks,
};

use crate::{random_continuous, random_points};

#[test]
fn ranks_match_the_naive_sort_with_ties_and_duplicates() {
    for m in 1..=5 {
        for (seed, levels) in [(1, 3), (2, 5), (3, 10), (4, 1000)] {
            let pts = random_points(seed * 10 + m as u64, 300, m, levels);
            assert_eq!(ranks(&pts), naive_ranks(&pts), "m = {m}, levels = {levels}");
        }
    }
}

#[test]
fn ranks_match_the_naive_sort_on_continuous_points() {
    for m in 2..=4 {
        let pts = random_continuous(m as u64, 2000, m);
        assert_eq!(ranks(&pts), naive_ranks(&pts), "m = {m}");
    }
}

#[test]
fn duplicates_share_a_rank_and_do_not_dominate_each_other() {
    let pts = vec![
        vec![1.0, 1.0],
        vec![1.0, 1.0],
        vec![0.0, 2.0],
        vec![2.0, 2.0],
    ];
    assert!(!dominates(&pts[0], &pts[1]));
    assert_eq!(ranks(&pts), vec![0, 0, 0, 1]);
    assert_eq!(nondominated(&pts), vec![0, 1, 2]);
}

#[test]
fn constrained_domination_puts_feasible_first_then_by_violation() {
    let pts = vec![
        vec![0.0, 0.0],
        vec![5.0, 5.0],
        vec![1.0, 0.0],
        vec![0.0, 0.0],
    ];
    let cv = vec![0.5, 0.0, 0.0, 0.1];
    let r = constrained_ranks(&pts, &cv);
    // Feasible: [5,5] is dominated by [1,0] -> ranks 1 and 0; infeasible by violation after.
    assert_eq!(r, vec![3, 1, 0, 2]);
}

#[test]
fn crowding_distance_is_infinite_at_the_ends_and_normalised_inside() {
    let pts = vec![
        vec![0.0, 4.0],
        vec![1.0, 3.0],
        vec![3.0, 1.0],
        vec![4.0, 0.0],
    ];
    let d = crowding_distance(&pts, &[0, 1, 2, 3]);
    assert!(d[0].is_infinite() && d[3].is_infinite());
    // Point 1: neighbours differ by 3 of a range of 4 in each objective.
    assert!(
        (d[1] - 1.5).abs() < 1e-12 && (d[2] - 1.5).abs() < 1e-12,
        "{d:?}"
    );
}

#[test]
fn knee_is_the_point_farthest_below_the_chord() {
    let pts = vec![
        vec![0.0, 1.0],
        vec![0.2, 0.3],
        vec![0.6, 0.1],
        vec![1.0, 0.0],
    ];
    assert_eq!(knee(&pts, &[0, 1, 2, 3]), Some(1));
}
