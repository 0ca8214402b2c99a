//! Hypervolume-based selection, a generational (mu + mu) form of SMS-EMOA (Beume, Naujoks and
//! Emmerich 2007) for three or more objectives: whole non-dominated fronts in rank order, then
//! the last front cut down by repeatedly dropping the member with the smallest exclusive
//! hypervolume contribution, with the reference point at the front's worst values plus 10% of
//! its range.
//!
//! Removing a point can only enlarge the exclusive contributions of the others, so stale
//! contributions are lower bounds: a lazy greedy loop recomputes only the candidates that reach
//! the top of a min-heap, which is exact and recomputes few contributions per removal.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::hypervolume::{default_reference, hypervolume};
use crate::pareto::{constrained_ranks, Key};

/// The exclusive hypervolume contribution of `pts[i]` within `pts` (those listed in `members`).
pub fn contribution(pts: &[Vec<f64>], members: &[usize], i: usize, r: &[f64]) -> f64 {
    let p = &pts[i];
    if p.iter().zip(r).any(|(a, b)| a >= b) {
        return 0.0;
    }
    let own: f64 = p.iter().zip(r).map(|(a, b)| b - a).product();
    let limit: Vec<Vec<f64>> = members
        .iter()
        .filter(|&&j| j != i)
        .map(|&j| pts[j].iter().zip(p).map(|(a, b)| a.max(*b)).collect())
        .collect();
    own - hypervolume(&limit, r)
}

/// Keeps `room` members of `front` (indices into `pts`) by dropping smallest contributions.
pub fn truncate(pts: &[Vec<f64>], front: &[usize], room: usize) -> Vec<usize> {
    let fp: Vec<&Vec<f64>> = front.iter().map(|&i| &pts[i]).collect();
    let r = default_reference(&fp);
    let mut alive: Vec<bool> = vec![true; pts.len()];
    let mut members: Vec<usize> = front.to_vec();
    let mut removals = 0usize;
    let mut heap: BinaryHeap<(Reverse<Key>, Reverse<usize>, usize)> = front
        .iter()
        .map(|&i| {
            (
                Reverse(Key(contribution(pts, &members, i, &r))),
                Reverse(i),
                0,
            )
        })
        .collect();
    while members.len() > room {
        let Some((Reverse(Key(c)), Reverse(i), stamp)) = heap.pop() else {
            break;
        };
        if !alive[i] {
            continue;
        }
        if stamp == removals {
            alive[i] = false;
            members.retain(|&j| j != i);
            removals += 1;
        } else {
            let fresh = contribution(pts, &members, i, &r).max(c);
            heap.push((Reverse(Key(fresh)), Reverse(i), removals));
        }
    }
    members
}

/// Chooses `n` of the candidates.
pub fn survive(objs: &[Vec<f64>], cv: &[f64], n: usize) -> Vec<usize> {
    let rank = constrained_ranks(objs, cv);
    let mut order: Vec<usize> = (0..objs.len()).collect();
    order.sort_by_key(|&i| rank[i]);
    let mut chosen = Vec::with_capacity(n);
    let mut k = 0;
    while k < order.len() && chosen.len() < n {
        let r = rank[order[k]];
        let front: Vec<usize> = order[k..]
            .iter()
            .copied()
            .take_while(|&i| rank[i] == r)
            .collect();
        k += front.len();
        let room = n - chosen.len();
        if front.len() <= room {
            chosen.extend(front);
        } else if cv[front[0]] > 0.0 {
            chosen.extend(front.into_iter().take(room));
        } else {
            chosen.extend(truncate(objs, &front, room));
        }
    }
    chosen
}
