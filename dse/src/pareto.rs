//! Pareto analysis: non-dominated sorting, crowding distance, constrained domination.
//!
//! Every function here minimises all objectives; callers negate maximised metrics first.

use std::cmp::Ordering;
use std::collections::BTreeMap;

/// An `f64` ordered by `total_cmp`, usable as a map key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Key(pub f64);
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Whether `a` Pareto-dominates `b` (no worse everywhere, better somewhere).
pub fn dominates(a: &[f64], b: &[f64]) -> bool {
    let mut better = false;
    for (x, y) in a.iter().zip(b) {
        if x > y {
            return false;
        }
        better |= x < y;
    }
    better
}

fn lex_cmp(a: &[f64], b: &[f64]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        match x.total_cmp(y) {
            Ordering::Equal => continue,
            o => return o,
        }
    }
    Ordering::Equal
}

/// What each front remembers to answer "does some member dominate this later point?".
enum FrontIndex {
    /// Two objectives: the smallest second objective so far.
    Min(f64),
    /// Three objectives: the staircase of (f2, f3) non-dominated among the members.
    Stairs(BTreeMap<Key, f64>),
    /// More objectives: the members themselves.
    Members(Vec<usize>),
}

impl FrontIndex {
    fn new(m: usize) -> Self {
        match m {
            0..=2 => FrontIndex::Min(f64::INFINITY),
            3 => FrontIndex::Stairs(BTreeMap::new()),
            _ => FrontIndex::Members(Vec::new()),
        }
    }

    /// Whether a member processed earlier (so lexicographically smaller, and not equal)
    /// dominates `p`.
    fn dominates<P: AsRef<[f64]>>(&self, p: &[f64], pts: &[P]) -> bool {
        match self {
            FrontIndex::Min(min) => p.len() < 2 || *min <= p[1],
            FrontIndex::Stairs(s) => s
                .range(..=Key(p[1]))
                .next_back()
                .is_some_and(|(_, &z)| z <= p[2]),
            FrontIndex::Members(ms) => ms
                .iter()
                .rev()
                .any(|&q| pts[q].as_ref().iter().zip(p).all(|(a, b)| a <= b)),
        }
    }

    fn insert(&mut self, i: usize, p: &[f64]) {
        match self {
            FrontIndex::Min(min) => {
                if p.len() >= 2 {
                    *min = min.min(p[1]);
                }
            }
            FrontIndex::Stairs(s) => {
                // p is not dominated by the staircase: drop the entries it dominates in (f2, f3).
                let doomed: Vec<Key> = s
                    .range(Key(p[1])..)
                    .take_while(|(_, &z)| z >= p[2])
                    .map(|(k, _)| *k)
                    .collect();
                for k in doomed {
                    s.remove(&k);
                }
                s.insert(Key(p[1]), p[2]);
            }
            FrontIndex::Members(ms) => ms.push(i),
        }
    }
}

/// Pareto rank of every point (0 = non-dominated), by the sort-and-binary-search method:
/// points are visited in lexicographic order and each is placed in the first front that has no
/// member dominating it. Costs O(n log n) for two objectives, O(n log^2 n) for three (a staircase
/// per front), and O(n F) dominance checks beyond. Duplicates share a rank. NaN must not occur.
pub fn ranks<P: AsRef<[f64]>>(pts: &[P]) -> Vec<usize> {
    let n = pts.len();
    let mut rank = vec![0; n];
    if n == 0 {
        return rank;
    }
    let m = pts[0].as_ref().len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&a, &b| lex_cmp(pts[a].as_ref(), pts[b].as_ref()));
    let mut fronts: Vec<FrontIndex> = Vec::new();
    let mut prev: Option<usize> = None;
    for &i in &order {
        let p = pts[i].as_ref();
        if let Some(j) = prev {
            if lex_cmp(pts[j].as_ref(), p) == Ordering::Equal {
                rank[i] = rank[j];
                continue;
            }
        }
        // Fronts dominating p form a prefix: binary search its length.
        let (mut lo, mut hi) = (0, fronts.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if fronts[mid].dominates(p, pts) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == fronts.len() {
            fronts.push(FrontIndex::new(m));
        }
        fronts[lo].insert(i, p);
        rank[i] = lo;
        prev = Some(i);
    }
    rank
}

/// Reference O(n^2 m) non-dominated sort (Deb's bookkeeping); for tests and tiny sets.
pub fn naive_ranks<P: AsRef<[f64]>>(pts: &[P]) -> Vec<usize> {
    let n = pts.len();
    let mut count = vec![0usize; n];
    let mut dominated_by_me: Vec<Vec<usize>> = vec![Vec::new(); n];
    for a in 0..n {
        for b in 0..n {
            if dominates(pts[a].as_ref(), pts[b].as_ref()) {
                dominated_by_me[a].push(b);
                count[b] += 1;
            }
        }
    }
    let mut rank = vec![0; n];
    let mut current: Vec<usize> = (0..n).filter(|&i| count[i] == 0).collect();
    let mut r = 0;
    while !current.is_empty() {
        let mut next = Vec::new();
        for &a in &current {
            rank[a] = r;
            for &b in &dominated_by_me[a] {
                count[b] -= 1;
                if count[b] == 0 {
                    next.push(b);
                }
            }
        }
        current = next;
        r += 1;
    }
    rank
}

/// Indices of the non-dominated points (rank 0), in input order.
pub fn nondominated<P: AsRef<[f64]>>(pts: &[P]) -> Vec<usize> {
    ranks(pts)
        .iter()
        .enumerate()
        .filter(|(_, &r)| r == 0)
        .map(|(i, _)| i)
        .collect()
}

/// Ranks under constrained domination (Deb 2000): every feasible point (violation 0) ranks
/// before every infeasible one; feasible points are ranked by Pareto dominance, infeasible ones
/// by total violation (equal violations share a rank).
pub fn constrained_ranks<P: AsRef<[f64]>>(pts: &[P], violation: &[f64]) -> Vec<usize> {
    let feasible: Vec<usize> = (0..pts.len()).filter(|&i| violation[i] <= 0.0).collect();
    let fr = ranks(
        &feasible
            .iter()
            .map(|&i| pts[i].as_ref())
            .collect::<Vec<_>>(),
    );
    let mut rank = vec![0; pts.len()];
    let mut next = 0;
    for (k, &i) in feasible.iter().enumerate() {
        rank[i] = fr[k];
        next = next.max(fr[k] + 1);
    }
    let mut infeasible: Vec<usize> = (0..pts.len()).filter(|&i| violation[i] > 0.0).collect();
    infeasible.sort_by(|&a, &b| violation[a].total_cmp(&violation[b]));
    let mut last: Option<f64> = None;
    for i in infeasible {
        if last.is_some_and(|v| v != violation[i]) {
            next += 1;
        }
        last = Some(violation[i]);
        rank[i] = next;
    }
    rank
}

/// Crowding distance (Deb et al. 2002) of each member of one front, in the order of `front`:
/// boundary points get infinity; others the sum over objectives of the normalised gap between
/// their neighbours.
pub fn crowding_distance<P: AsRef<[f64]>>(pts: &[P], front: &[usize]) -> Vec<f64> {
    let n = front.len();
    let mut d = vec![0.0; n];
    if n <= 2 {
        return vec![f64::INFINITY; n];
    }
    let m = pts[front[0]].as_ref().len();
    let mut order: Vec<usize> = (0..n).collect();
    for k in 0..m {
        let v = |i: usize| pts[front[i]].as_ref()[k];
        order.sort_by(|&a, &b| v(a).total_cmp(&v(b)));
        let (lo, hi) = (v(order[0]), v(order[n - 1]));
        d[order[0]] = f64::INFINITY;
        d[order[n - 1]] = f64::INFINITY;
        if hi > lo {
            for w in 1..n - 1 {
                d[order[w]] += (v(order[w + 1]) - v(order[w - 1])) / (hi - lo);
            }
        }
    }
    d
}

/// The knee of a front: the point farthest below the hyperplane through the front's extremes
/// after min-max normalisation of each objective, i.e. the smallest sum of normalised objectives.
/// For two objectives this is the point farthest from the chord between the two extremes.
pub fn knee<P: AsRef<[f64]>>(pts: &[P], front: &[usize]) -> Option<usize> {
    let m = pts.get(*front.first()?)?.as_ref().len();
    let lo: Vec<f64> = (0..m)
        .map(|k| {
            front
                .iter()
                .map(|&i| pts[i].as_ref()[k])
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    let hi: Vec<f64> = (0..m)
        .map(|k| {
            front
                .iter()
                .map(|&i| pts[i].as_ref()[k])
                .fold(f64::NEG_INFINITY, f64::max)
        })
        .collect();
    let score = |i: usize| -> f64 {
        (0..m)
            .map(|k| {
                if hi[k] > lo[k] {
                    (pts[i].as_ref()[k] - lo[k]) / (hi[k] - lo[k])
                } else {
                    0.0
                }
            })
            .sum()
    };
    front
        .iter()
        .copied()
        .min_by(|&a, &b| score(a).total_cmp(&score(b)))
}
