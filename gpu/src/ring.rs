//! Sequence-parallel attention forward over NCCL: a [`sim::ring::Plan`] (Ring, zigzag Ring,
//! TokenRing, zigzag TokenRing) executed with our attention kernels.
//!
//! Each logical rank holds its Q, K and V shards; per step it runs one attention launch (a
//! [`MaskSpec::Shards`] mask gives causality on global positions) and merges partial results
//! into an fp32 accumulator with the TokenRing rule (`ring.cu`). Transfers go through two NCCL
//! communicators, each on its own stream: the forward one carries K/V (Ring) or Q (TokenRing),
//! the backward one carries TokenRing's partial outputs and log-sum-exps to their owners. As
//! in the implementations, a step's transfers wait for the previous step's compute, and a
//! step's compute waits for the previous step's transfers.
//!
//! With one GPU every logical rank lives on it and NCCL moves the shards between ranks through
//! world-size-1 communicators (send and receive to self): the degenerate mode that tests the
//! whole path on one device. With as many GPUs as ranks, rank r runs on GPU r.

use std::collections::HashMap;
use std::sync::Arc;

use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{CudaEvent, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};
use cudarc::nccl::result as nccl;
use cudarc::nccl::safe::Comm;
use sim::ring::{Payload, Plan};

use crate::attention::{self, AttnBufs, AttnProblem, AttnVariant, DeviceMask};
use crate::device::{nccl_present, Gpu};
use crate::harness::Harness;
use crate::kernels::Source;
use crate::mask::MaskSpec;
use crate::{Dtype, GpuError, Result};

fn nccl_err(what: &str, e: nccl::NcclError) -> GpuError {
    GpuError::driver(format!("NCCL {what}"), format!("{e:?}"))
}

/// GPUs, their compute streams, and the two NCCL communicators.
pub struct SpCluster {
    /// The GPUs (one: degenerate mode).
    pub gpus: Vec<Gpu>,
    compute: Vec<Arc<CudaStream>>,
    fwd: Vec<Comm>,
    bwd: Vec<Comm>,
}

impl SpCluster {
    /// Opens `devices` GPUs and initialises both communicators over them. With
    /// `comm_priority` their streams get the highest stream priority, so that NCCL's kernels
    /// take multiprocessors as soon as attention blocks retire instead of queueing behind the
    /// whole attention grid.
    pub fn open(devices: usize, comm_priority: bool) -> Result<SpCluster> {
        if !nccl_present() {
            return Err(GpuError::NoDevice(
                "NCCL (libnccl.so) is not on the library path".into(),
            ));
        }
        let gpus = (0..devices).map(Gpu::open).collect::<Result<Vec<_>>>()?;
        let stream = |g: &Gpu, what: &str, high: bool| {
            let made = if high {
                g.ctx.bind_to_thread().and_then(|_| {
                    let (_, greatest) = cudarc::driver::result::stream::get_priority_range()?;
                    g.ctx.new_stream_with_priority(greatest)
                })
            } else {
                g.ctx.new_stream()
            };
            made.map_err(|e| GpuError::driver(format!("creating the {what} stream"), e))
        };
        let compute = gpus
            .iter()
            .map(|g| stream(g, "compute", false))
            .collect::<Result<Vec<_>>>()?;
        let fwd_streams = gpus
            .iter()
            .map(|g| stream(g, "forward", comm_priority))
            .collect::<Result<Vec<_>>>()?;
        let bwd_streams = gpus
            .iter()
            .map(|g| stream(g, "backward", comm_priority))
            .collect::<Result<Vec<_>>>()?;
        let fwd = Comm::from_devices(fwd_streams).map_err(|e| nccl_err("init (forward)", e))?;
        let bwd = Comm::from_devices(bwd_streams).map_err(|e| nccl_err("init (backward)", e))?;
        Ok(SpCluster {
            gpus,
            compute,
            fwd,
            bwd,
        })
    }

    /// Times NCCL point-to-point transfers of each size in `sizes` (bytes) between GPU 0 and
    /// GPU 1 (GPU 0 and itself in degenerate mode), with nothing else running: one way (the
    /// forward communicator) and both ways at once (forward and backward, as TokenRing uses
    /// them). Median of `reps` after one warm-up, each from both GPUs' host-synchronised start
    /// to the receive completing.
    pub fn probe(&self, sizes: &[usize], reps: usize) -> Result<Vec<LinkSample>> {
        let (d0, d1) = (0, usize::from(self.gpus.len() > 1));
        let (p0, p1) = (d1 as i32, d0 as i32); // peer of device 0, of device 1
        let mut out = Vec::new();
        for &bytes in sizes {
            let a_send = self.gpus[d0].zeros::<u8>(bytes, "probe buffer")?;
            let mut a_recv = self.gpus[d0].zeros::<u8>(bytes, "probe buffer")?;
            let b_send = self.gpus[d1].zeros::<u8>(bytes, "probe buffer")?;
            let mut b_recv = self.gpus[d1].zeros::<u8>(bytes, "probe buffer")?;
            let mut times = [Vec::new(), Vec::new()];
            for (mode, t) in times.iter_mut().enumerate() {
                for rep in 0..=reps {
                    for g in &self.gpus {
                        g.sync()?;
                    }
                    for s in [&self.fwd[d0], &self.fwd[d1], &self.bwd[d0], &self.bwd[d1]] {
                        s.stream()
                            .synchronize()
                            .map_err(|e| GpuError::driver("synchronize", e))?;
                    }
                    let s1 = event(&self.gpus[d1], &self.fwd[d1].stream())?;
                    let s0 = event(&self.gpus[d0], &self.bwd[d0].stream())?;
                    nccl::group_start().map_err(|e| nccl_err("group start", e))?;
                    self.fwd[d0]
                        .send(&a_send, p0)
                        .map_err(|e| nccl_err("send", e))?;
                    self.fwd[d1]
                        .recv(&mut b_recv, p1)
                        .map_err(|e| nccl_err("recv", e))?;
                    if mode == 1 {
                        self.bwd[d1]
                            .send(&b_send, p1)
                            .map_err(|e| nccl_err("send", e))?;
                        self.bwd[d0]
                            .recv(&mut a_recv, p0)
                            .map_err(|e| nccl_err("recv", e))?;
                    }
                    nccl::group_end().map_err(|e| nccl_err("group end", e))?;
                    let e1 = event(&self.gpus[d1], &self.fwd[d1].stream())?;
                    let e0 = event(&self.gpus[d0], &self.bwd[d0].stream())?;
                    e1.synchronize()
                        .map_err(|e| GpuError::driver("synchronize", e))?;
                    e0.synchronize()
                        .map_err(|e| GpuError::driver("synchronize", e))?;
                    let one = s1
                        .elapsed_ms(&e1)
                        .map_err(|e| GpuError::driver("event elapsed time", e))?;
                    let back = s0
                        .elapsed_ms(&e0)
                        .map_err(|e| GpuError::driver("event elapsed time", e))?;
                    let us = if mode == 1 { one.max(back) } else { one } as f64 * 1e3;
                    if rep > 0 {
                        t.push(us);
                    }
                }
            }
            let med = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            out.push(LinkSample {
                bytes,
                one_way_us: med(&mut times[0]),
                both_ways_us: med(&mut times[1]),
            });
        }
        Ok(out)
    }

    /// Device of logical rank `r` of `ranks`.
    fn device_of(&self, r: usize, ranks: usize) -> usize {
        r * self.gpus.len() / ranks
    }
}

/// One link-probe measurement.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LinkSample {
    /// Bytes per transfer.
    pub bytes: usize,
    /// One transfer, GPU 0 to GPU 1, µs.
    pub one_way_us: f64,
    /// One transfer each way at once (two communicators), µs.
    pub both_ways_us: f64,
}

/// Where a rank finds a shard.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Loc {
    Own,
    Slot(usize),
}

/// Buffers of one logical rank.
struct Rank {
    dev: usize,
    q: CudaSlice<u16>,
    k: CudaSlice<u16>,
    v: CudaSlice<u16>,
    /// Receive slots (by step parity) for the circulating shard: Q, or K and V.
    rq: Vec<CudaSlice<u16>>,
    rk: Vec<CudaSlice<u16>>,
    rv: Vec<CudaSlice<u16>>,
    /// Partial results computed here, by step parity.
    po: Vec<CudaSlice<u16>>,
    pl: Vec<CudaSlice<f32>>,
    /// Partial results received from other ranks, by step parity.
    ro: Vec<CudaSlice<u16>>,
    rl: Vec<CudaSlice<f32>>,
    acc: CudaSlice<f32>,
    acc_lse: CudaSlice<f32>,
    out: CudaSlice<u16>,
}

impl Rank {
    /// Merges a partial result into the accumulator: one computed here, or one received.
    fn merge(
        &mut self,
        gpu: &Gpu,
        p: &AttnProblem,
        stream: &CudaStream,
        received: bool,
        slot: usize,
    ) -> Result<()> {
        let (o, l) = if received {
            (&self.ro[slot], &self.rl[slot])
        } else {
            (&self.po[slot], &self.pl[slot])
        };
        merge(gpu, p, stream, o, l, &mut self.acc, &mut self.acc_lse)
    }
}

/// Timing of one run: per step, per logical rank compute time and per device communication
/// span; all in µs from the run's start on each device.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SpTiming {
    /// End to end (slowest device).
    pub total_us: f64,
    /// `compute_us[step][rank]`: attention and merges of that step.
    pub compute_us: Vec<Vec<f64>>,
    /// `comm_us[step][device]`: from the step's transfers being issued to both streams done.
    pub comm_us: Vec<Vec<f64>>,
    /// `step_end_us[step][device]`: compute stream done with the step.
    pub step_end_us: Vec<Vec<f64>>,
}

impl SpTiming {
    /// Busiest rank's total compute.
    pub fn compute_only_us(&self) -> f64 {
        let ranks = self.compute_us.first().map_or(0, Vec::len);
        (0..ranks)
            .map(|r| self.compute_us.iter().map(|s| s[r]).sum::<f64>())
            .fold(0.0, f64::max)
    }
}

/// A plan ready to run on a cluster: shards uploaded, masks compiled, buffers allocated.
pub struct SpRun<'c> {
    cluster: &'c SpCluster,
    plan: Plan,
    problem: AttnProblem,
    variant: AttnVariant,
    ranks: Vec<Rank>,
    masks: HashMap<(usize, usize), DeviceMask>,
    positions: Vec<Vec<usize>>,
    poisoners: Vec<Harness<'c>>,
}

/// Rows `positions` of a `[heads][tokens][d]` tensor: `[heads][positions.len()][d]`.
pub fn shard(global: &[u16], heads: usize, tokens: usize, d: usize, pos: &[usize]) -> Vec<u16> {
    let mut out = Vec::with_capacity(heads * pos.len() * d);
    for h in 0..heads {
        for &t in pos {
            out.extend_from_slice(&global[(h * tokens + t) * d..][..d]);
        }
    }
    out
}

impl<'c> SpRun<'c> {
    /// Prepares `plan` with global inputs `q` `[heads][tokens][d]`, `k`, `v`
    /// `[kv_heads][tokens][d]` (bit patterns of `dtype`).
    pub fn new(
        cluster: &'c SpCluster,
        plan: Plan,
        dtype: Dtype,
        variant: AttnVariant,
        q: &[u16],
        k: &[u16],
        v: &[u16],
    ) -> Result<SpRun<'c>> {
        let s = plan.shape;
        let n = plan.devices;
        // Masks are per (q owner, kv owner) pair: one device holds them all in degenerate
        // mode; with several GPUs each rank has its own.
        if cluster.gpus.len() > 1 && cluster.gpus.len() != n {
            return Err(GpuError::Config(format!(
                "{n} ranks on {} GPUs: use one GPU (degenerate mode) or one rank per GPU",
                cluster.gpus.len()
            )));
        }
        if !n.is_multiple_of(cluster.gpus.len()) {
            return Err(GpuError::Config(format!(
                "{n} ranks do not spread evenly over {} GPUs",
                cluster.gpus.len()
            )));
        }
        if q.len() != s.heads * s.tokens * s.head_dim
            || k.len() != s.kv_heads * s.tokens * s.head_dim
            || v.len() != k.len()
        {
            return Err(GpuError::Config(
                "input sizes do not match the plan's shape".into(),
            ));
        }
        let part = plan.schedule.partition();
        let positions: Vec<Vec<usize>> = (0..n)
            .map(|r| {
                part.chunks_of(r, n)
                    .into_iter()
                    .flat_map(|c| c * plan.chunk..(c + 1) * plan.chunk)
                    .collect()
            })
            .collect();
        let n_loc = positions[0].len();
        let problem = AttnProblem {
            batch: 1,
            heads: s.heads,
            kv_heads: s.kv_heads,
            n_q: n_loc,
            n_kv: n_loc,
            head_dim: s.head_dim,
            dtype,
        };
        problem.validate()?;
        let (qn, kvn, rows) = (problem.q_len(), problem.kv_len(), s.heads * n_loc);
        let moves_q = plan.schedule.moves_q();
        let mut ranks = Vec::with_capacity(n);
        for (r, pos) in positions.iter().enumerate() {
            let dev = cluster.device_of(r, n);
            let g = &cluster.gpus[dev];
            let slots = |len: usize, on: bool, what: &str| -> Result<Vec<CudaSlice<u16>>> {
                (0..if on { 2 } else { 0 })
                    .map(|_| g.zeros(len, what))
                    .collect()
            };
            let fslots = |len: usize, on: bool, what: &str| -> Result<Vec<CudaSlice<f32>>> {
                (0..if on { 2 } else { 0 })
                    .map(|_| g.zeros(len, what))
                    .collect()
            };
            ranks.push(Rank {
                dev,
                q: attention::upload(g, &shard(q, s.heads, s.tokens, s.head_dim, pos), "Q shard")?,
                k: attention::upload(
                    g,
                    &shard(k, s.kv_heads, s.tokens, s.head_dim, pos),
                    "K shard",
                )?,
                v: attention::upload(
                    g,
                    &shard(v, s.kv_heads, s.tokens, s.head_dim, pos),
                    "V shard",
                )?,
                rq: slots(qn, moves_q, "Q receive slots")?,
                rk: slots(kvn, !moves_q, "K receive slots")?,
                rv: slots(kvn, !moves_q, "V receive slots")?,
                po: slots(qn, true, "partial outputs")?,
                pl: fslots(rows, true, "partial LSEs")?,
                ro: slots(qn, moves_q, "received partials")?,
                rl: fslots(rows, moves_q, "received LSEs")?,
                acc: g.zeros(qn, "accumulator")?,
                acc_lse: g.zeros(rows, "accumulator LSE")?,
                out: g.zeros(qn, "output")?,
            });
        }
        let mut masks = HashMap::new();
        for w in &plan.works {
            let key = (w.q_owner, w.kv_owner);
            if masks.contains_key(&key) {
                continue;
            }
            let mask = if s.causal {
                MaskSpec::Shards {
                    run: plan.chunk,
                    q_starts: part
                        .chunks_of(w.q_owner, n)
                        .iter()
                        .map(|c| c * plan.chunk)
                        .collect(),
                    k_starts: part
                        .chunks_of(w.kv_owner, n)
                        .iter()
                        .map(|c| c * plan.chunk)
                        .collect(),
                }
            } else {
                MaskSpec::Full
            };
            let g = &cluster.gpus[ranks[w.dev].dev];
            masks.insert(key, DeviceMask::new(g, &mask, &problem, variant)?);
        }
        let poisoners = cluster
            .gpus
            .iter()
            .map(Harness::new)
            .collect::<Result<Vec<_>>>()?;
        Ok(SpRun {
            poisoners,
            cluster,
            plan,
            problem,
            variant,
            ranks,
            masks,
            positions,
        })
    }

    /// Poisons the outputs, runs the plan once and returns its timing.
    // The step index addresses the plan, the event tables and the buffer slots alike.
    #[allow(clippy::needless_range_loop)]
    pub fn run(&mut self) -> Result<SpTiming> {
        let cl = self.cluster;
        let n = self.plan.devices;
        let p = self.problem;
        let ndev = cl.gpus.len();
        for g in &cl.gpus {
            g.sync()?;
        }
        // Poison the outputs; reset the accumulators.
        for r in 0..n {
            let dev = self.ranks[r].dev;
            self.poisoners[dev].poison(&mut self.ranks[r].out, 0xffff_ffff)?;
            let g = &cl.gpus[dev];
            let f = g.function(Source::Ring, &defines(&p), "sp_reset")?;
            let (len, rows) = (p.q_len() as i32, (p.heads * p.n_q) as i32);
            let rk = &mut self.ranks[r];
            #[allow(unsafe_code)]
            // SAFETY: sp_reset writes len accumulator and rows LSE entries, their sizes.
            unsafe {
                g.stream
                    .launch_builder(&f)
                    .arg(&mut rk.acc)
                    .arg(&mut rk.acc_lse)
                    .arg(&len)
                    .arg(&rows)
                    .launch(LaunchConfig::for_num_elems(len.max(rows) as u32))
                    .map_err(|e| GpuError::driver("sp_reset", e))?;
            }
        }
        for g in &cl.gpus {
            g.sync()?;
        }
        let start: Vec<CudaEvent> = (0..ndev)
            .map(|d| event(&cl.gpus[d], &cl.compute[d]))
            .collect::<Result<_>>()?;
        let steps = self
            .plan
            .transfers
            .iter()
            .map(|t| t.step)
            .max()
            .unwrap_or(0)
            .max(self.plan.steps - 1)
            + 1;
        let mut held: HashMap<(usize, bool, usize), Loc> = HashMap::new();
        let mut work_events: Vec<Vec<Vec<(CudaEvent, CudaEvent)>>> = (0..steps)
            .map(|_| (0..n).map(|_| Vec::new()).collect())
            .collect();
        let mut comm_events: Vec<Vec<(CudaEvent, CudaEvent, CudaEvent)>> = Vec::new();
        let mut step_end: Vec<Vec<CudaEvent>> = Vec::new();
        let works = self.plan.works.clone();
        let transfers = self.plan.transfers.clone();
        for s in 0..steps {
            // Transfers of step s wait for the compute of step s − 1 (it read the slot they
            // overwrite, and produced the partials they carry) and overlap the compute of step
            // s, which waits for the transfers of step s − 1 (below).
            for d in 0..ndev {
                let prev = event(&cl.gpus[d], &cl.compute[d])?;
                for comm in [&cl.fwd[d], &cl.bwd[d]] {
                    comm.stream()
                        .wait(&prev)
                        .map_err(|e| GpuError::driver("stream wait", e))?;
                }
            }
            let mut issued: Vec<Option<CudaEvent>> = (0..ndev)
                .map(|d| event(&cl.gpus[d], &cl.fwd[d].stream()).map(Some))
                .collect::<Result<_>>()?;
            for w in works.iter().filter(|w| w.step == s) {
                let r = w.dev;
                let dev = self.ranks[r].dev;
                let stream = cl.compute[dev].clone();
                let t0 = event(&cl.gpus[dev], &stream)?;
                let qloc = if w.q_owner == r {
                    Loc::Own
                } else {
                    held[&(r, true, w.q_owner)]
                };
                let kvloc = if w.kv_owner == r {
                    Loc::Own
                } else {
                    held[&(r, false, w.kv_owner)]
                };
                let slot = s % 2;
                {
                    let mask = &self.masks[&(w.q_owner, w.kv_owner)];
                    let rk = &mut self.ranks[r];
                    let q = match qloc {
                        Loc::Own => &rk.q,
                        Loc::Slot(i) => &rk.rq[i],
                    };
                    let (k, v) = match kvloc {
                        Loc::Own => (&rk.k, &rk.v),
                        Loc::Slot(i) => (&rk.rk[i], &rk.rv[i]),
                    };
                    let bufs = AttnBufs {
                        q,
                        k,
                        v,
                        o: &mut rk.po[slot],
                        lse: &mut rk.pl[slot],
                    };
                    attention::launch_on(&cl.gpus[dev], &stream, &p, self.variant, bufs, mask)?;
                }
                if w.q_owner == r {
                    self.ranks[r].merge(&cl.gpus[dev], &p, &stream, false, slot)?;
                }
                let t1 = event(&cl.gpus[dev], &stream)?;
                work_events[s][r].push((t0, t1));
            }
            let step_transfers: Vec<_> =
                transfers.iter().filter(|t| t.step == s).cloned().collect();
            if !step_transfers.is_empty() {
                nccl::group_start().map_err(|e| nccl_err("group start", e))?;
                for t in &step_transfers {
                    self.enqueue_transfer(t, s, &held)?;
                }
                nccl::group_end().map_err(|e| nccl_err("group end", e))?;
                for t in &step_transfers {
                    match t.payload {
                        Payload::Q { owner } => {
                            held.insert((t.dst, true, owner), Loc::Slot(s % 2));
                        }
                        Payload::Kv { owner } => {
                            held.insert((t.dst, false, owner), Loc::Slot(s % 2));
                        }
                        Payload::Partial { .. } => {}
                    }
                }
            }
            let mut done = Vec::new();
            for (d, iss) in issued.iter_mut().enumerate() {
                let f = event(&cl.gpus[d], &cl.fwd[d].stream())?;
                let b = event(&cl.gpus[d], &cl.bwd[d].stream())?;
                // The next step's compute waits for this step's transfers.
                cl.compute[d]
                    .wait(&f)
                    .map_err(|e| GpuError::driver("stream wait", e))?;
                cl.compute[d]
                    .wait(&b)
                    .map_err(|e| GpuError::driver("stream wait", e))?;
                done.push((iss.take().expect("recorded"), f, b));
            }
            comm_events.push(done);
            // Received partials are merged by their owners.
            for t in step_transfers
                .iter()
                .filter(|t| matches!(t.payload, Payload::Partial { .. }))
            {
                let b = t.dst;
                let dev = self.ranks[b].dev;
                let stream = cl.compute[dev].clone();
                let t0 = event(&cl.gpus[dev], &stream)?;
                self.ranks[b].merge(&cl.gpus[dev], &p, &stream, true, s % 2)?;
                let t1 = event(&cl.gpus[dev], &stream)?;
                work_events[s][b].push((t0, t1));
            }
            step_end.push(
                (0..ndev)
                    .map(|d| event(&cl.gpus[d], &cl.compute[d]))
                    .collect::<Result<_>>()?,
            );
        }
        // Accumulators to the element type.
        for r in 0..n {
            let dev = self.ranks[r].dev;
            let g = &cl.gpus[dev];
            let f = g.function(Source::Ring, &defines(&p), "sp_finalize")?;
            let len = p.q_len() as i32;
            let rk = &mut self.ranks[r];
            #[allow(unsafe_code)]
            // SAFETY: sp_finalize converts len elements; acc and out both hold len.
            unsafe {
                cl.compute[dev]
                    .launch_builder(&f)
                    .arg(&rk.acc)
                    .arg(&mut rk.out)
                    .arg(&len)
                    .launch(LaunchConfig::for_num_elems(len as u32))
                    .map_err(|e| GpuError::driver("sp_finalize", e))?;
            }
        }
        let finish: Vec<CudaEvent> = (0..ndev)
            .map(|d| event(&cl.gpus[d], &cl.compute[d]))
            .collect::<Result<_>>()?;
        for d in 0..ndev {
            cl.compute[d]
                .synchronize()
                .map_err(|e| GpuError::driver("synchronize", e))?;
        }
        let el = |a: &CudaEvent, b: &CudaEvent| -> Result<f64> {
            a.elapsed_ms(b)
                .map(|ms| ms as f64 * 1e3)
                .map_err(|e| GpuError::driver("event elapsed time", e))
        };
        let mut t = SpTiming::default();
        for d in 0..ndev {
            t.total_us = t.total_us.max(el(&start[d], &finish[d])?);
        }
        for s in 0..steps {
            let mut c = vec![0.0; n];
            for (r, evs) in work_events[s].iter().enumerate() {
                for (a, b) in evs {
                    c[r] += el(a, b)?;
                }
            }
            t.compute_us.push(c);
            let mut comm = Vec::new();
            let mut ends = Vec::new();
            for d in 0..ndev {
                let (i, f, b) = &comm_events[s][d];
                comm.push(el(i, f)?.max(el(i, b)?));
                ends.push(el(&start[d], &step_end[s][d])?);
            }
            t.comm_us.push(comm);
            t.step_end_us.push(ends);
        }
        Ok(t)
    }

    fn enqueue_transfer(
        &mut self,
        t: &sim::ring::Transfer,
        s: usize,
        held: &HashMap<(usize, bool, usize), Loc>,
    ) -> Result<()> {
        let cl = self.cluster;
        let (a, b) = (t.src, t.dst);
        let (da, db) = (self.ranks[a].dev, self.ranks[b].dev);
        let backward = matches!(t.payload, Payload::Partial { .. });
        let (ca, cb) = if backward {
            (&cl.bwd[da], &cl.bwd[db])
        } else {
            (&cl.fwd[da], &cl.fwd[db])
        };
        let (pa, pb) = (db as i32, da as i32);
        let slot = s % 2;
        let (ra, rb) = pair_mut(&mut self.ranks, a, b);
        match t.payload {
            Payload::Q { owner } => {
                let src = match if owner == a {
                    Loc::Own
                } else {
                    held[&(a, true, owner)]
                } {
                    Loc::Own => &ra.q,
                    Loc::Slot(i) => &ra.rq[i],
                };
                send_bytes(ca, pa, src)?;
                recv_bytes(cb, &mut rb.rq[slot], pb)?;
            }
            Payload::Kv { owner } => {
                let (k, v) = match if owner == a {
                    Loc::Own
                } else {
                    held[&(a, false, owner)]
                } {
                    Loc::Own => (&ra.k, &ra.v),
                    Loc::Slot(i) => (&ra.rk[i], &ra.rv[i]),
                };
                send_bytes(ca, pa, k)?;
                recv_bytes(cb, &mut rb.rk[slot], pb)?;
                send_bytes(ca, pa, v)?;
                recv_bytes(cb, &mut rb.rv[slot], pb)?;
            }
            Payload::Partial { step, .. } => {
                send_bytes(ca, pa, &ra.po[step % 2])?;
                recv_bytes(cb, &mut rb.ro[slot], pb)?;
                send_bytes(ca, pa, &ra.pl[step % 2])?;
                recv_bytes(cb, &mut rb.rl[slot], pb)?;
            }
        }
        Ok(())
    }

    /// The output and log-sum-exp in global order: `[heads][tokens][d]` and `[heads][tokens]`.
    pub fn output(&self) -> Result<(Vec<u16>, Vec<f32>)> {
        let s = self.plan.shape;
        let d = s.head_dim;
        let mut out = vec![0u16; s.heads * s.tokens * d];
        let mut lse = vec![0f32; s.heads * s.tokens];
        for (r, rk) in self.ranks.iter().enumerate() {
            let g = &self.cluster.gpus[rk.dev];
            let o = g
                .stream
                .clone_dtoh(&rk.out)
                .map_err(|e| GpuError::driver("download output", e))?;
            let l = g
                .stream
                .clone_dtoh(&rk.acc_lse)
                .map_err(|e| GpuError::driver("download LSE", e))?;
            let pos = &self.positions[r];
            for h in 0..s.heads {
                for (i, &t) in pos.iter().enumerate() {
                    out[(h * s.tokens + t) * d..][..d]
                        .copy_from_slice(&o[(h * pos.len() + i) * d..][..d]);
                    lse[h * s.tokens + t] = l[h * pos.len() + i];
                }
            }
        }
        Ok((out, lse))
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }
}

fn event(gpu: &Gpu, stream: &CudaStream) -> Result<CudaEvent> {
    let e = gpu
        .ctx
        .new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
        .map_err(|e| GpuError::driver("creating an event", e))?;
    e.record(stream)
        .map_err(|e| GpuError::driver("recording an event", e))?;
    Ok(e)
}

/// Merges a partial result (`po`, `pl`) into an accumulator on `stream`.
fn merge(
    gpu: &Gpu,
    p: &AttnProblem,
    stream: &CudaStream,
    po: &CudaSlice<u16>,
    pl: &CudaSlice<f32>,
    acc: &mut CudaSlice<f32>,
    acc_lse: &mut CudaSlice<f32>,
) -> Result<()> {
    let f = gpu.function(Source::Ring, &defines(p), "sp_merge")?;
    let rows = p.n_q as i32;
    let cfg = LaunchConfig {
        grid_dim: (p.n_q as u32, p.heads as u32, 1),
        block_dim: (p.head_dim as u32, 1, 1),
        shared_mem_bytes: 0,
    };
    #[allow(unsafe_code)]
    // SAFETY: sp_merge(po, plse, acc, acc_lse, rows) reads and writes heads x rows rows of
    // head_dim elements, the size of every buffer passed.
    unsafe {
        stream
            .launch_builder(&f)
            .arg(po)
            .arg(pl)
            .arg(acc)
            .arg(acc_lse)
            .arg(&rows)
            .launch(cfg)
            .map_err(|e| GpuError::driver("sp_merge", e))?;
    }
    Ok(())
}

fn defines(p: &AttnProblem) -> Vec<(&'static str, i64)> {
    crate::kernels::elem_defines(p.head_dim, p.dtype)
}

/// Enqueues an NCCL send of `buf`'s bytes to `peer` (inside a group).
fn send_bytes<T>(comm: &Comm, peer: i32, buf: &CudaSlice<T>) -> Result<()> {
    #[allow(unsafe_code)]
    // SAFETY: the buffer viewed as its own bytes, no more.
    let view = unsafe { buf.transmute::<u8>(buf.len() * std::mem::size_of::<T>()) }
        .ok_or_else(|| GpuError::Check("byte view".into()))?;
    comm.send(&view, peer).map_err(|e| nccl_err("send", e))
}

/// Enqueues an NCCL receive into `buf`'s bytes from `peer` (inside a group).
fn recv_bytes<T>(comm: &Comm, buf: &mut CudaSlice<T>, peer: i32) -> Result<()> {
    let n = buf.len() * std::mem::size_of::<T>();
    #[allow(unsafe_code)]
    // SAFETY: the buffer viewed as its own bytes, no more.
    let mut view =
        unsafe { buf.transmute_mut::<u8>(n) }.ok_or_else(|| GpuError::Check("byte view".into()))?;
    comm.recv(&mut view, peer)
        .map(|_| ())
        .map_err(|e| nccl_err("recv", e))
}

/// Two distinct elements of a slice, both mutable.
fn pair_mut<T>(v: &mut [T], a: usize, b: usize) -> (&mut T, &mut T) {
    assert_ne!(a, b, "a transfer between a rank and itself");
    if a < b {
        let (x, y) = v.split_at_mut(b);
        (&mut x[a], &mut y[0])
    } else {
        let (x, y) = v.split_at_mut(a);
        (&mut y[0], &mut x[b])
    }
}
