//! Sequence-parallel attention schedules as explicit plans: which device computes which
//! (query shard, key/value shard) pair at which step, and which shards and partial results
//! travel where. The simulator ([`super::simulate`]) times a plan; the fp64 reference
//! ([`super::reference`]) executes it.

use super::RingError;

/// A sequence-parallel attention schedule (forward pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Schedule {
    /// Ring Attention: K/V shards travel one hop per step around the ring; contiguous shards.
    Ring,
    /// Ring Attention on zigzag shards (device r holds chunks r and 2N−1−r of 2N), which
    /// balances the causal work.
    ZigzagRing,
    /// TokenRing: Q shards travel one hop forward per step; each step's partial output and
    /// log-sum-exp go straight back to the Q's owner.
    TokenRing,
    /// TokenRing on zigzag shards.
    ZigzagTokenRing,
}

impl Schedule {
    /// Every schedule.
    pub const ALL: [Schedule; 4] = [
        Schedule::Ring,
        Schedule::ZigzagRing,
        Schedule::TokenRing,
        Schedule::ZigzagTokenRing,
    ];

    /// Name as written in configs: `ring`, `zigzag_ring`, `token_ring`, `zigzag_token_ring`.
    pub fn name(self) -> &'static str {
        match self {
            Schedule::Ring => "ring",
            Schedule::ZigzagRing => "zigzag_ring",
            Schedule::TokenRing => "token_ring",
            Schedule::ZigzagTokenRing => "zigzag_token_ring",
        }
    }

    /// Parses a [`Schedule::name`].
    pub fn parse(s: &str) -> Result<Schedule, RingError> {
        Schedule::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| RingError::Config {
                field: "schedule".into(),
                why: format!(
                    "`{s}` is not a schedule (valid: ring, zigzag_ring, token_ring, zigzag_token_ring)"
                ),
            })
    }

    /// How the sequence is sharded.
    pub fn partition(self) -> Partition {
        match self {
            Schedule::Ring | Schedule::TokenRing => Partition::Contiguous,
            Schedule::ZigzagRing | Schedule::ZigzagTokenRing => Partition::Zigzag,
        }
    }

    /// Whether Q (rather than K/V) circulates.
    pub fn moves_q(self) -> bool {
        matches!(self, Schedule::TokenRing | Schedule::ZigzagTokenRing)
    }
}

/// How the sequence is split among devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    /// Device r holds tokens [r n, (r+1) n).
    Contiguous,
    /// 2N chunks; device r holds chunks r and 2N−1−r, in that order.
    Zigzag,
}

impl Partition {
    /// Chunks of the sequence.
    pub fn chunks(self, devices: usize) -> usize {
        match self {
            Partition::Contiguous => devices,
            Partition::Zigzag => 2 * devices,
        }
    }
    /// Chunk indices held by device `r`, in local order (ascending global position).
    pub fn chunks_of(self, r: usize, devices: usize) -> Vec<usize> {
        match self {
            Partition::Contiguous => vec![r],
            Partition::Zigzag => vec![r, 2 * devices - 1 - r],
        }
    }
}

/// Problem shape: one sequence (batch 1) split across the devices.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct AttnShape {
    /// Total tokens of the sequence.
    pub tokens: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (divides `heads`).
    pub kv_heads: usize,
    /// Head dimension.
    pub head_dim: usize,
    /// Causal mask (on global positions).
    pub causal: bool,
    /// Bytes per Q/K/V/O element (2 for fp16/bf16).
    pub elem_bytes: usize,
}

impl AttnShape {
    /// Checks the shape against the device count and partition.
    pub fn validate(&self, devices: usize, partition: Partition) -> Result<(), RingError> {
        let bad = |field: &str, why: String| {
            Err(RingError::Config {
                field: field.into(),
                why,
            })
        };
        let chunks = partition.chunks(devices);
        if self.tokens == 0 || !self.tokens.is_multiple_of(chunks) {
            return bad(
                "tokens",
                format!(
                    "{} tokens do not split into {chunks} equal chunks ({devices} devices)",
                    self.tokens
                ),
            );
        }
        if self.heads == 0 || self.kv_heads == 0 || !self.heads.is_multiple_of(self.kv_heads) {
            return bad(
                "kv_heads",
                format!(
                    "{} must be positive and divide heads = {}",
                    self.kv_heads, self.heads
                ),
            );
        }
        if self.head_dim == 0 || self.elem_bytes == 0 {
            return bad(
                "head_dim",
                "head_dim and elem_bytes must be positive".into(),
            );
        }
        Ok(())
    }
    /// Bytes of a K/V shard of `tokens` tokens (K and V).
    pub fn kv_bytes(&self, tokens: usize) -> u64 {
        (2 * tokens * self.kv_heads * self.head_dim * self.elem_bytes) as u64
    }
    /// Bytes of a Q shard.
    pub fn q_bytes(&self, tokens: usize) -> u64 {
        (tokens * self.heads * self.head_dim * self.elem_bytes) as u64
    }
    /// Bytes of a partial result for `rows` query tokens: the output and an fp32 log-sum-exp
    /// per row and head.
    pub fn partial_bytes(&self, rows: usize) -> u64 {
        (rows * self.heads * (self.head_dim * self.elem_bytes + 4)) as u64
    }
    /// Useful FLOPs of `pairs` allowed (query, key) pairs: 4 d per pair per head.
    pub fn flops(&self, pairs: u64) -> f64 {
        4.0 * self.head_dim as f64 * self.heads as f64 * pairs as f64
    }
}

/// One kernel launch: `n_q` queries against `n_kv` keys, all pairs (`causal` false) or the
/// top-left-aligned causal triangle of a square block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Call {
    /// Query tokens.
    pub n_q: usize,
    /// Key tokens.
    pub n_kv: usize,
    /// Causal diagonal block.
    pub causal: bool,
}

impl Call {
    /// Allowed (query, key) pairs per head.
    pub fn pairs(&self) -> u64 {
        if self.causal {
            (self.n_q * (self.n_q + 1) / 2) as u64
        } else {
            (self.n_q * self.n_kv) as u64
        }
    }
}

/// What a transfer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Payload {
    /// The K/V shard of a device.
    Kv {
        /// Device whose shard it is.
        owner: usize,
    },
    /// The Q shard of a device.
    Q {
        /// Device whose shard it is.
        owner: usize,
    },
    /// A partial result (output and log-sum-exp) for `q_owner`'s queries, computed on `from`
    /// at step `step`.
    Partial {
        /// Device the queries belong to.
        q_owner: usize,
        /// Device that computed it.
        from: usize,
        /// Step it was computed in.
        step: usize,
    },
}

/// Attention work of one device in one step.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Work {
    /// Step.
    pub step: usize,
    /// Device computing.
    pub dev: usize,
    /// Whose queries.
    pub q_owner: usize,
    /// Whose keys and values.
    pub kv_owner: usize,
    /// Kernel launches.
    pub calls: Vec<Call>,
    /// Query tokens with any allowed key (rows of the partial result).
    pub rows: usize,
}

/// A point-to-point transfer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Transfer {
    /// Step in which it is issued.
    pub step: usize,
    /// Sender.
    pub src: usize,
    /// Receiver.
    pub dst: usize,
    /// What it carries.
    pub payload: Payload,
    /// Bytes.
    pub bytes: u64,
}

/// A schedule instantiated for a shape and device count.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    /// The schedule.
    pub schedule: Schedule,
    /// Devices.
    pub devices: usize,
    /// Shape.
    pub shape: AttnShape,
    /// Tokens per chunk.
    pub chunk: usize,
    /// Steps.
    pub steps: usize,
    /// Work, step by step, device by device.
    pub works: Vec<Work>,
    /// Transfers, in issue order.
    pub transfers: Vec<Transfer>,
}

impl Plan {
    /// Builds the plan of `schedule` for `shape` on `devices` devices.
    pub fn new(schedule: Schedule, shape: AttnShape, devices: usize) -> Result<Plan, RingError> {
        if devices == 0 {
            return Err(RingError::Config {
                field: "devices".into(),
                why: "at least one device".into(),
            });
        }
        let part = schedule.partition();
        shape.validate(devices, part)?;
        let chunk = shape.tokens / part.chunks(devices);
        let n = devices;
        let mut works = Vec::new();
        let mut transfers = Vec::new();
        for s in 0..n {
            for r in 0..n {
                let (q_owner, kv_owner) = if schedule.moves_q() {
                    ((r + n - s) % n, r)
                } else {
                    (r, (r + n - s) % n)
                };
                let (calls, rows) = calls_for(part, n, chunk, shape.causal, q_owner, kv_owner);
                if s + 1 < n {
                    let payload = if schedule.moves_q() {
                        Payload::Q { owner: q_owner }
                    } else {
                        Payload::Kv { owner: kv_owner }
                    };
                    let tokens = chunk * part.chunks_of(0, n).len();
                    transfers.push(Transfer {
                        step: s,
                        src: r,
                        dst: (r + 1) % n,
                        bytes: if schedule.moves_q() {
                            shape.q_bytes(tokens)
                        } else {
                            shape.kv_bytes(tokens)
                        },
                        payload,
                    });
                }
                if calls.is_empty() {
                    continue;
                }
                if schedule.moves_q() && q_owner != r {
                    // Sent back while the next step computes.
                    transfers.push(Transfer {
                        step: s + 1,
                        src: r,
                        dst: q_owner,
                        payload: Payload::Partial {
                            q_owner,
                            from: r,
                            step: s,
                        },
                        bytes: shape.partial_bytes(rows),
                    });
                }
                works.push(Work {
                    step: s,
                    dev: r,
                    q_owner,
                    kv_owner,
                    calls,
                    rows,
                });
            }
        }
        transfers.sort_by_key(|t| t.step); // stable: issue order within a step kept
        Ok(Plan {
            schedule,
            devices,
            shape,
            chunk,
            steps: n,
            works,
            transfers,
        })
    }

    /// Allowed (query, key) pairs per head over the whole plan (equals the mask's total when
    /// the plan covers every pair once).
    pub fn pairs(&self) -> u64 {
        self.works
            .iter()
            .flat_map(|w| &w.calls)
            .map(Call::pairs)
            .sum()
    }
}

/// Kernel launches for `q_owner`'s queries against `kv_owner`'s keys: one launch when the
/// allowed pairs form a full rectangle or a causal square over the local concatenation (as
/// ring-flash-attention's zigzag does), one per chunk pair otherwise. Also returns the query
/// tokens that see any key.
fn calls_for(
    part: Partition,
    n: usize,
    chunk: usize,
    causal: bool,
    q_owner: usize,
    kv_owner: usize,
) -> (Vec<Call>, usize) {
    let qc = part.chunks_of(q_owner, n);
    let kc = part.chunks_of(kv_owner, n);
    if !causal {
        let c = Call {
            n_q: chunk * qc.len(),
            n_kv: chunk * kc.len(),
            causal: false,
        };
        return (vec![c], c.n_q);
    }
    if q_owner == kv_owner {
        let c = Call {
            n_q: chunk * qc.len(),
            n_kv: chunk * kc.len(),
            causal: true,
        };
        return (vec![c], c.n_q);
    }
    // Different owners never share a chunk, so each chunk pair is full or empty.
    let q_rows: Vec<usize> = qc
        .iter()
        .copied()
        .filter(|&a| kc.iter().any(|&b| b < a))
        .collect();
    let k_cols: Vec<usize> = kc
        .iter()
        .copied()
        .filter(|&b| qc.iter().any(|&a| b < a))
        .collect();
    if q_rows.is_empty() {
        return (vec![], 0);
    }
    let rectangle = q_rows.iter().all(|&a| k_cols.iter().all(|&b| b < a));
    let calls = if rectangle {
        vec![Call {
            n_q: chunk * q_rows.len(),
            n_kv: chunk * k_cols.len(),
            causal: false,
        }]
    } else {
        let mut v = Vec::new();
        for &a in &q_rows {
            for &b in &kc {
                if b < a {
                    v.push(Call {
                        n_q: chunk,
                        n_kv: chunk,
                        causal: false,
                    });
                }
            }
        }
        v
    };
    (calls, chunk * q_rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(tokens: usize, causal: bool, kv_heads: usize) -> AttnShape {
        AttnShape {
            tokens,
            heads: 8,
            kv_heads,
            head_dim: 64,
            causal,
            elem_bytes: 2,
        }
    }

    #[test]
    fn plans_cover_every_allowed_pair_once() {
        for s in Schedule::ALL {
            for n in [1, 2, 3, 4, 8] {
                for causal in [false, true] {
                    let t = 16 * 2 * n;
                    let p = Plan::new(s, shape(t, causal, 2), n).unwrap();
                    let want = if causal {
                        (t * (t + 1) / 2) as u64
                    } else {
                        (t * t) as u64
                    };
                    assert_eq!(p.pairs(), want, "{s:?} n={n} causal={causal}");
                }
            }
        }
    }

    #[test]
    fn zigzag_balances_causal_work_and_contiguous_does_not() {
        let n = 4;
        let work = |s: Schedule| {
            let p = Plan::new(s, shape(64 * n, true, 8), n).unwrap();
            let mut per = vec![0u64; n];
            for w in &p.works {
                per[w.dev] += w.calls.iter().map(Call::pairs).sum::<u64>();
            }
            per
        };
        for s in [Schedule::ZigzagRing, Schedule::ZigzagTokenRing] {
            let per = work(s);
            let (lo, hi) = (per.iter().min().unwrap(), per.iter().max().unwrap());
            assert!(hi - lo <= 64, "{s:?} {per:?}"); // only the diagonal's half-row terms
        }
        let per = work(Schedule::Ring);
        assert!(per[3] > 3 * per[0], "{per:?}");
    }

    #[test]
    fn traffic_per_step_matches_the_published_ratios() {
        // Per step and device: Ring moves 2 n Hkv d elements; TokenRing n H d forward and
        // n H d + n H lse back: half per direction for MHA, double for GQA 4:1.
        let n = 4;
        let fwd = |s: Schedule, kv: usize| {
            let p = Plan::new(s, shape(1024 * n, false, kv), n).unwrap();
            p.transfers
                .iter()
                .filter(|t| t.step == 1 && t.src == 0 && t.dst == 1)
                .map(|t| t.bytes)
                .sum::<u64>()
        };
        assert_eq!(fwd(Schedule::Ring, 8), 2 * fwd(Schedule::TokenRing, 8));
        assert_eq!(2 * fwd(Schedule::Ring, 2), fwd(Schedule::TokenRing, 2));
        let p = Plan::new(Schedule::TokenRing, shape(1024 * n, false, 8), n).unwrap();
        let back: u64 = p
            .transfers
            .iter()
            .filter(|t| t.step == 2 && t.src == 0)
            .filter(|t| matches!(t.payload, Payload::Partial { .. }))
            .map(|t| t.bytes)
            .sum();
        assert_eq!(back, (1024 * 8 * (64 * 2 + 4)) as u64);
    }

    #[test]
    fn bad_shapes_are_rejected_by_field() {
        let e = Plan::new(Schedule::ZigzagRing, shape(100, true, 8), 8).unwrap_err();
        assert!(e.to_string().contains("tokens"), "{e}");
        let e = Plan::new(Schedule::Ring, shape(64, true, 3), 2).unwrap_err();
        assert!(e.to_string().contains("kv_heads"), "{e}");
        let e = Schedule::parse("tree").unwrap_err();
        assert!(e.to_string().contains("valid: ring"), "{e}");
    }
}
