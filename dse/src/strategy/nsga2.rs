//! NSGA-II environmental selection and mating (Deb, Pratap, Agarwal and Meyarivan 2002) with
//! constrained domination: feasible before infeasible, infeasible by total violation.

use rand::Rng;

use crate::pareto::{constrained_ranks, crowding_distance};

/// The survivors of one selection with what mating needs to know of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Indices of the survivors into the candidate list.
    pub chosen: Vec<usize>,
    /// Rank of each survivor.
    pub rank: Vec<usize>,
    /// Crowding distance of each survivor within its front.
    pub crowding: Vec<f64>,
}

/// Chooses `n` of the candidates: whole fronts in rank order, the last one by descending
/// crowding distance (ties keep candidate order).
pub fn survive(objs: &[Vec<f64>], cv: &[f64], n: usize) -> Selection {
    let rank = constrained_ranks(objs, cv);
    let max_rank = rank.iter().copied().max().unwrap_or(0);
    let mut fronts: Vec<Vec<usize>> = vec![Vec::new(); max_rank + 1];
    for (i, &r) in rank.iter().enumerate() {
        fronts[r].push(i);
    }
    let mut sel = Selection {
        chosen: Vec::with_capacity(n),
        rank: Vec::with_capacity(n),
        crowding: Vec::with_capacity(n),
    };
    for (r, front) in fronts.iter().enumerate() {
        if sel.chosen.len() >= n {
            break;
        }
        let cd = crowding_distance(objs, front);
        let mut order: Vec<usize> = (0..front.len()).collect();
        if sel.chosen.len() + front.len() > n {
            order.sort_by(|&a, &b| cd[b].total_cmp(&cd[a]));
            order.truncate(n - sel.chosen.len());
        }
        for k in order {
            sel.chosen.push(front[k]);
            sel.rank.push(r);
            sel.crowding.push(cd[k]);
        }
    }
    sel
}

/// Binary tournament: the less violating wins; among feasible ones the lower rank, then the
/// larger crowding distance; remaining ties at random.
pub fn tournament<R: Rng>(sel: &Selection, cv: &[f64], rng: &mut R) -> usize {
    let n = sel.chosen.len();
    let a = rng.random_range(0..n);
    let b = rng.random_range(0..n);
    let (ca, cb) = (cv[a], cv[b]);
    let pick_a = if ca > 0.0 || cb > 0.0 {
        if ca != cb {
            ca < cb
        } else {
            rng.random()
        }
    } else if sel.rank[a] != sel.rank[b] {
        sel.rank[a] < sel.rank[b]
    } else if sel.crowding[a] != sel.crowding[b] {
        sel.crowding[a] > sel.crowding[b]
    } else {
        rng.random()
    };
    if pick_a {
        a
    } else {
        b
    }
}
