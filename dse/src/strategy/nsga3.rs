//! NSGA-III environmental selection (Deb and Jain 2014): non-dominated fronts, then the last
//! front filled by niching around Das-Dennis reference directions in an adaptively normalised
//! objective space (ideal point, extreme points by achievement scalarising, hyperplane
//! intercepts with a fallback to the front's worst values).

use rand::Rng;

use crate::pareto::constrained_ranks;

/// Das-Dennis reference directions: all points of the unit simplex in `m` dimensions whose
/// coordinates are multiples of `1 / divisions`.
pub fn reference_directions(m: usize, divisions: usize) -> Vec<Vec<f64>> {
    fn rec(m: usize, left: usize, p: usize, cur: &mut Vec<usize>, out: &mut Vec<Vec<f64>>) {
        if cur.len() == m - 1 {
            cur.push(left);
            out.push(cur.iter().map(|&c| c as f64 / p as f64).collect());
            cur.pop();
            return;
        }
        for k in 0..=left {
            cur.push(k);
            rec(m, left - k, p, cur, out);
            cur.pop();
        }
    }
    let mut out = Vec::new();
    if m == 0 {
        return out;
    }
    rec(m, divisions, divisions.max(1), &mut Vec::new(), &mut out);
    out
}

fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// The largest number of divisions whose directions do not outnumber the population.
pub fn default_divisions(m: usize, population: usize) -> usize {
    if m <= 1 {
        return 1;
    }
    let mut p = 1;
    while binomial(p + 1 + m - 1, m - 1) <= population as f64 {
        p += 1;
    }
    p
}

/// What NSGA-III carries from one generation to the next.
#[derive(Debug, Clone, Default)]
pub struct State {
    ideal: Vec<f64>,
    worst: Vec<f64>,
    extremes: Vec<Vec<f64>>,
}

/// Chooses `n` of the candidates.
pub fn survive<R: Rng>(
    objs: &[Vec<f64>],
    cv: &[f64],
    n: usize,
    refs: &[Vec<f64>],
    st: &mut State,
    rng: &mut R,
) -> Vec<usize> {
    let rank = constrained_ranks(objs, cv);
    let mut order: Vec<usize> = (0..objs.len()).collect();
    order.sort_by_key(|&i| rank[i]);
    // Fronts up to and including the one that overflows.
    let mut upto = 0;
    while upto < order.len() && (upto < n || rank[order[upto]] == rank[order[upto - 1]]) {
        upto += 1;
    }
    let cands: Vec<usize> = order[..upto].to_vec();
    if cands.len() <= n {
        return cands;
    }
    let last = rank[cands[cands.len() - 1]];
    // Infeasible candidates are never niched: NSGA-III applies to feasible fronts.
    if cv[cands[cands.len() - 1]] > 0.0 {
        let mut c = cands;
        c.truncate(n);
        return c;
    }
    let m = objs[0].len();
    let feas: Vec<usize> = (0..objs.len()).filter(|&i| cv[i] <= 0.0).collect();
    if st.ideal.is_empty() {
        st.ideal = vec![f64::INFINITY; m];
        st.worst = vec![f64::NEG_INFINITY; m];
    }
    for &i in &feas {
        for (k, &v) in objs[i].iter().enumerate() {
            st.ideal[k] = st.ideal[k].min(v);
            st.worst[k] = st.worst[k].max(v);
        }
    }
    let first: Vec<usize> = cands
        .iter()
        .copied()
        .filter(|&i| rank[i] == rank[cands[0]])
        .collect();
    let nadir = nadir_point(objs, &first, st);
    let norm = |i: usize| -> Vec<f64> {
        (0..m)
            .map(|k| (objs[i][k] - st.ideal[k]) / (nadir[k] - st.ideal[k]))
            .collect()
    };
    let unit_refs: Vec<Vec<f64>> = refs
        .iter()
        .map(|r| {
            let l = r.iter().map(|x| x * x).sum::<f64>().sqrt();
            r.iter().map(|x| x / l).collect()
        })
        .collect();
    // Associate every candidate with its nearest reference line.
    let mut niche = vec![0usize; cands.len()];
    let mut dist = vec![0.0; cands.len()];
    for (c, &i) in cands.iter().enumerate() {
        let f = norm(i);
        let mut best = (f64::INFINITY, 0);
        for (j, w) in unit_refs.iter().enumerate() {
            let dot: f64 = f.iter().zip(w).map(|(a, b)| a * b).sum();
            let d2: f64 = f.iter().zip(w).map(|(a, b)| (a - dot * b).powi(2)).sum();
            if d2 < best.0 {
                best = (d2, j);
            }
        }
        niche[c] = best.1;
        dist[c] = best.0.sqrt();
    }
    let mut count = vec![0usize; refs.len()];
    let mut chosen: Vec<usize> = Vec::with_capacity(n);
    let mut pool: Vec<Vec<usize>> = vec![Vec::new(); refs.len()];
    for (c, &i) in cands.iter().enumerate() {
        if rank[i] < last {
            chosen.push(i);
            count[niche[c]] += 1;
        } else {
            pool[niche[c]].push(c);
        }
    }
    let mut active: Vec<usize> = (0..refs.len()).filter(|&j| !pool[j].is_empty()).collect();
    while chosen.len() < n && !active.is_empty() {
        let min = active.iter().map(|&j| count[j]).min().unwrap_or(0);
        let ties: Vec<usize> = active
            .iter()
            .copied()
            .filter(|&j| count[j] == min)
            .collect();
        let j = ties[rng.random_range(0..ties.len())];
        let members = &mut pool[j];
        let pick = if count[j] == 0 {
            (0..members.len())
                .min_by(|&a, &b| dist[members[a]].total_cmp(&dist[members[b]]))
                .unwrap_or(0)
        } else {
            rng.random_range(0..members.len())
        };
        let c = members.swap_remove(pick);
        chosen.push(cands[c]);
        count[j] += 1;
        if members.is_empty() {
            active.retain(|&a| a != j);
        }
    }
    chosen
}

/// Nadir estimate from the hyperplane through the extreme points; falls back to the worst
/// values of the first front where the hyperplane is degenerate.
fn nadir_point(objs: &[Vec<f64>], first: &[usize], st: &mut State) -> Vec<f64> {
    let m = st.ideal.len();
    let mut pool: Vec<Vec<f64>> = first.iter().map(|&i| objs[i].clone()).collect();
    pool.extend(st.extremes.iter().cloned());
    let mut extremes = Vec::with_capacity(m);
    for k in 0..m {
        let asf = |f: &Vec<f64>| -> f64 {
            (0..m)
                .map(|j| (f[j] - st.ideal[j]) / if j == k { 1.0 } else { 1e-6 })
                .fold(f64::NEG_INFINITY, f64::max)
        };
        let best = pool
            .iter()
            .min_by(|a, b| asf(a).total_cmp(&asf(b)))
            .cloned()
            .unwrap_or_else(|| st.ideal.clone());
        extremes.push(best);
    }
    st.extremes = extremes.clone();
    let worst_front: Vec<f64> = (0..m)
        .map(|k| {
            first
                .iter()
                .map(|&i| objs[i][k])
                .fold(f64::NEG_INFINITY, f64::max)
        })
        .collect();
    let a: Vec<Vec<f64>> = extremes
        .iter()
        .map(|e| (0..m).map(|k| e[k] - st.ideal[k]).collect())
        .collect();
    let mut nadir = match solve(a, vec![1.0; m]) {
        Some(b) if b.iter().all(|&x| x > 1e-6) => {
            let nad: Vec<f64> = (0..m).map(|k| st.ideal[k] + 1.0 / b[k]).collect();
            if (0..m).all(|k| nad[k] > st.ideal[k] + 1e-6 && nad[k] <= st.worst[k] + 1e-9) {
                nad
            } else {
                worst_front.clone()
            }
        }
        _ => worst_front.clone(),
    };
    for ((n, &lo), &hi) in nadir.iter_mut().zip(&st.ideal).zip(&st.worst) {
        if *n - lo <= 1e-6 {
            *n = hi.max(lo + 1e-6);
        }
    }
    nadir
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, piv);
        b.swap(col, piv);
        let (top, rest) = a.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for (k, row) in rest.iter_mut().enumerate() {
            let f = row[col] / pivot_row[col];
            for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            b[col + 1 + k] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|c| a[r][c] * x[c]).sum();
        x[r] = (b[r] - s) / a[r][r];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// Mating selection: the less violating of two random members, otherwise either at random.
pub fn tournament<R: Rng>(cv: &[f64], rng: &mut R) -> usize {
    let n = cv.len();
    let a = rng.random_range(0..n);
    let b = rng.random_range(0..n);
    if cv[a] < cv[b] || (cv[a] == cv[b] && rng.random::<bool>()) {
        a
    } else {
        b
    }
}
