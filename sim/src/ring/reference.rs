//! fp64 execution of a [`Plan`]: every device really computes its blocks from the shards it
//! holds, partial results really travel (for Q-moving schedules) and are merged with
//! `lse = logaddexp(lse_a, lse_b)`, `out = out_a + sigmoid(lse_b − lse_a) (out_b − out_a)`.
//! A device computing with a shard the plan never delivered is an error, so the check covers
//! the data movement as well as the arithmetic.

use std::collections::{HashMap, HashSet};

use super::schedule::{AttnShape, Payload, Plan};
use super::RingError;

/// Q, K, V of one sequence: Q `[heads][tokens][d]`, K and V `[kv_heads][tokens][d]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Qkv {
    /// Queries.
    pub q: Vec<f64>,
    /// Keys.
    pub k: Vec<f64>,
    /// Values.
    pub v: Vec<f64>,
}

/// Attention output `[heads][tokens][d]` and log-sum-exp `[heads][tokens]` (natural log, of
/// the scaled scores).
#[derive(Debug, Clone, PartialEq)]
pub struct AttnOut {
    /// Output.
    pub out: Vec<f64>,
    /// Log-sum-exp.
    pub lse: Vec<f64>,
}

impl Qkv {
    /// Deterministic pseudo-random inputs in [-1, 1) (splitmix64), for tests.
    pub fn random(shape: &AttnShape, seed: u64) -> Qkv {
        let mut state = seed;
        let mut draw = |n: usize| -> Vec<f64> {
            (0..n)
                .map(|_| {
                    state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let mut z = state;
                    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                    z ^= z >> 31;
                    (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
                })
                .collect()
        };
        let (t, d) = (shape.tokens, shape.head_dim);
        Qkv {
            q: draw(shape.heads * t * d),
            k: draw(shape.kv_heads * t * d),
            v: draw(shape.kv_heads * t * d),
        }
    }
}

/// One query row against a set of key positions: (output, lse); lse = −inf for no keys.
fn row(
    shape: &AttnShape,
    x: &Qkv,
    h: usize,
    i: usize,
    keys: impl Iterator<Item = usize> + Clone,
) -> (Vec<f64>, f64) {
    let (t, d) = (shape.tokens, shape.head_dim);
    let hk = h / (shape.heads / shape.kv_heads);
    let scale = 1.0 / (d as f64).sqrt();
    let q = &x.q[(h * t + i) * d..][..d];
    let score = |j: usize| -> f64 {
        let k = &x.k[(hk * t + j) * d..][..d];
        scale * q.iter().zip(k).map(|(a, b)| a * b).sum::<f64>()
    };
    let m = keys.clone().map(score).fold(f64::NEG_INFINITY, f64::max);
    let mut out = vec![0.0; d];
    if m == f64::NEG_INFINITY {
        return (out, m);
    }
    let mut sum = 0.0;
    for j in keys {
        let p = (score(j) - m).exp();
        sum += p;
        for (o, v) in out.iter_mut().zip(&x.v[(hk * t + j) * d..][..d]) {
            *o += p * v;
        }
    }
    out.iter_mut().for_each(|o| *o /= sum);
    (out, m + sum.ln())
}

/// Full attention on one device, the ground truth.
pub fn full_attention(shape: &AttnShape, x: &Qkv) -> AttnOut {
    let (t, d) = (shape.tokens, shape.head_dim);
    let mut res = AttnOut {
        out: vec![0.0; shape.heads * t * d],
        lse: vec![0.0; shape.heads * t],
    };
    for h in 0..shape.heads {
        for i in 0..t {
            let hi = if shape.causal { i + 1 } else { t };
            let (o, l) = row(shape, x, h, i, 0..hi);
            res.out[(h * t + i) * d..][..d].copy_from_slice(&o);
            res.lse[h * t + i] = l;
        }
    }
    res
}

/// Merges partial `b` into `a` (output row and lse), as the schedules do.
pub fn merge_into(out_a: &mut [f64], lse_a: &mut f64, out_b: &[f64], lse_b: f64) {
    if lse_b == f64::NEG_INFINITY {
        return;
    }
    if *lse_a == f64::NEG_INFINITY {
        out_a.copy_from_slice(out_b);
        *lse_a = lse_b;
        return;
    }
    let sig = 1.0 / (1.0 + (*lse_a - lse_b).exp()); // sigmoid(lse_b − lse_a)
    for (a, b) in out_a.iter_mut().zip(out_b) {
        *a += sig * (b - *a);
    }
    let m = lse_a.max(lse_b);
    *lse_a = m + ((*lse_a - m).exp() + (lse_b - m).exp()).ln();
}

/// A partial result: per (head, global query position), output and lse.
type Partial = HashMap<(usize, usize), (Vec<f64>, f64)>;

/// Executes `plan` on `x` and returns the output gathered in global order.
pub fn execute(plan: &Plan, x: &Qkv) -> Result<AttnOut, RingError> {
    let shape = &plan.shape;
    let part = plan.schedule.partition();
    let (n, c, t, d) = (plan.devices, plan.chunk, shape.tokens, shape.head_dim);
    let positions = |owner: usize| -> Vec<usize> {
        part.chunks_of(owner, n)
            .into_iter()
            .flat_map(|k| k * c..(k + 1) * c)
            .collect()
    };
    // What each device holds: (device, is_q, owner).
    let mut held: HashSet<(usize, bool, usize)> =
        (0..n).flat_map(|r| [(r, true, r), (r, false, r)]).collect();
    let mut acc = AttnOut {
        out: vec![0.0; shape.heads * t * d],
        lse: vec![f64::NEG_INFINITY; shape.heads * t],
    };
    let mut outbox: HashMap<(usize, usize), Partial> = HashMap::new(); // (step, from)
    let merge = |acc: &mut AttnOut, p: &Partial| {
        for (&(h, i), (o, l)) in p {
            let r = h * t + i;
            merge_into(&mut acc.out[r * d..][..d], &mut acc.lse[r], o, *l);
        }
    };
    let last = plan.transfers.iter().map(|x| x.step).max().unwrap_or(0);
    for s in 0..=last.max(plan.steps - 1) {
        for w in plan.works.iter().filter(|w| w.step == s) {
            for (is_q, owner) in [(true, w.q_owner), (false, w.kv_owner)] {
                if !held.contains(&(w.dev, is_q, owner)) {
                    return Err(RingError::Deadlock(format!(
                        "{:?}: device {} computes at step {s} with the {} shard of device {owner}, which it never received",
                        plan.schedule,
                        w.dev,
                        if is_q { "Q" } else { "K/V" }
                    )));
                }
            }
            let keys = positions(w.kv_owner);
            let mut p = Partial::new();
            for h in 0..shape.heads {
                for i in positions(w.q_owner) {
                    let ks = keys.iter().copied().filter(|&j| !shape.causal || j <= i);
                    let (o, l) = row(shape, x, h, i, ks);
                    if l > f64::NEG_INFINITY {
                        p.insert((h, i), (o, l));
                    }
                }
            }
            if w.q_owner == w.dev {
                merge(&mut acc, &p);
            } else {
                outbox.insert((s, w.dev), p);
            }
        }
        for tr in plan.transfers.iter().filter(|tr| tr.step == s) {
            match tr.payload {
                Payload::Q { owner } | Payload::Kv { owner } => {
                    let is_q = matches!(tr.payload, Payload::Q { .. });
                    if !held.contains(&(tr.src, is_q, owner)) {
                        return Err(RingError::Deadlock(format!(
                            "device {} forwards a shard of device {owner} it does not hold (step {s})",
                            tr.src
                        )));
                    }
                    held.insert((tr.dst, is_q, owner));
                }
                Payload::Partial {
                    q_owner,
                    from,
                    step,
                } => {
                    let p = outbox.remove(&(step, from)).ok_or_else(|| {
                        RingError::Deadlock(format!(
                            "partial of device {from} at step {step} sent before it exists"
                        ))
                    })?;
                    if tr.dst != q_owner {
                        return Err(RingError::Deadlock(format!(
                            "partial for device {q_owner}'s queries sent to device {}",
                            tr.dst
                        )));
                    }
                    merge(&mut acc, &p);
                }
            }
        }
    }
    if let Some(((s, from), _)) = outbox.into_iter().next() {
        return Err(RingError::Deadlock(format!(
            "the partial computed by device {from} at step {s} never reached its owner"
        )));
    }
    Ok(acc)
}

/// Largest absolute differences (output, lse) between two results.
pub fn max_abs_diff(a: &AttnOut, b: &AttnOut) -> (f64, f64) {
    let m = |x: &[f64], y: &[f64]| {
        x.iter()
            .zip(y)
            .map(|(p, q)| if p == q { 0.0 } else { (p - q).abs() })
            .fold(0.0, f64::max)
    };
    (m(&a.out, &b.out), m(&a.lse, &b.lse))
}
