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

/// How the last front is cut down to size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// Keep the largest crowding distances, computed once (Deb et al. 2002).
    Classic,
    /// Drop the most crowded member one at a time, recomputing its neighbours' distances after
    /// each removal (Kukkonen and Deb 2006; pymoo's `pcd`): a more even spread.
    Pruning,
}

/// Chooses `n` of the candidates: whole fronts in rank order, the last one cut down by
/// crowding distance (`Truncation`; ties keep candidate order).
pub fn survive<P: AsRef<[f64]>>(objs: &[P], cv: &[f64], n: usize) -> Selection {
    survive_with(objs, cv, n, Truncation::Classic)
}

/// [`survive`] with a chosen truncation of the last front.
pub fn survive_with<P: AsRef<[f64]>>(
    objs: &[P],
    cv: &[f64],
    n: usize,
    trunc: Truncation,
) -> Selection {
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
        let room = n - sel.chosen.len();
        let (keep, cd): (Vec<usize>, Vec<f64>) =
            if front.len() > room && trunc == Truncation::Pruning {
                prune(objs, front, room)
            } else {
                let cd = crowding_distance(objs, front);
                let mut order: Vec<usize> = (0..front.len()).collect();
                if front.len() > room {
                    order.sort_by(|&a, &b| cd[b].total_cmp(&cd[a]));
                    order.truncate(room);
                }
                (
                    order.iter().map(|&k| front[k]).collect(),
                    order.iter().map(|&k| cd[k]).collect(),
                )
            };
        for (i, d) in keep.into_iter().zip(cd) {
            sel.chosen.push(i);
            sel.rank.push(r);
            sel.crowding.push(d);
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

/// Pruning crowding distance: drops the member of smallest crowding distance, one at a time,
/// updating only the removed member's neighbours (kept in per-objective linked lists), so each
/// removal costs O(m) plus a scan. Returns the survivors and their final distances, in front
/// order. The extremes of each objective are never dropped (infinite distance), so the ranges
/// stay those of the whole front.
pub fn prune<P: AsRef<[f64]>>(objs: &[P], front: &[usize], room: usize) -> (Vec<usize>, Vec<f64>) {
    let l = front.len();
    let m = objs.get(front[0]).map_or(0, |o| o.as_ref().len());
    const NONE: usize = usize::MAX;
    let v = |i: usize, k: usize| objs[front[i]].as_ref()[k];
    let mut prev = vec![vec![NONE; l]; m];
    let mut next = vec![vec![NONE; l]; m];
    let mut range = vec![0.0; m];
    for k in 0..m {
        let mut order: Vec<usize> = (0..l).collect();
        order.sort_by(|&a, &b| v(a, k).total_cmp(&v(b, k)));
        for w in order.windows(2) {
            next[k][w[0]] = w[1];
            prev[k][w[1]] = w[0];
        }
        range[k] = v(order[l - 1], k) - v(order[0], k);
    }
    let dist = |i: usize, prev: &[Vec<usize>], next: &[Vec<usize>]| -> f64 {
        if l <= 2 {
            return f64::INFINITY;
        }
        let mut d = 0.0;
        for k in 0..m {
            let (p, n) = (prev[k][i], next[k][i]);
            if p == NONE || n == NONE {
                return f64::INFINITY;
            }
            if range[k] > 0.0 {
                d += (v(n, k) - v(p, k)) / range[k];
            }
        }
        d
    };
    let mut d: Vec<f64> = (0..l).map(|i| dist(i, &prev, &next)).collect();
    let mut alive = vec![true; l];
    let mut count = l;
    while count > room {
        let Some(w) = (0..l)
            .filter(|&i| alive[i])
            .min_by(|&a, &b| d[a].total_cmp(&d[b]))
        else {
            break;
        };
        alive[w] = false;
        count -= 1;
        let mut touched = Vec::with_capacity(2 * m);
        for k in 0..m {
            let (p, n) = (prev[k][w], next[k][w]);
            if p != NONE {
                next[k][p] = n;
                touched.push(p);
            }
            if n != NONE {
                prev[k][n] = p;
                touched.push(n);
            }
        }
        for t in touched {
            d[t] = dist(t, &prev, &next);
        }
    }
    let keep: Vec<usize> = (0..l).filter(|&i| alive[i]).collect();
    (
        keep.iter().map(|&i| front[i]).collect(),
        keep.iter().map(|&i| d[i]).collect(),
    )
}
