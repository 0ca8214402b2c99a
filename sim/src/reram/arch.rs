//! Architecture model: one training iteration of K-FAC on a ReRAM accelerator (RePAST-style),
//! and of first-order training on a PipeLayer-style pipeline, in latency, energy and area.
//!
//! Per iteration (mini-batch of `batch` samples; a layer sees `batch × rows_per_sample` input
//! vectors, `rows_per_sample` > 1 for convolutions over im2col patches):
//! 1. **forward**: every vector is a VMM on the layer's weight crossbars (`copies` replicas);
//!    layers form a pipeline, so the phase lasts the slowest layer plus the fill;
//! 2. **backward**: the error vectors are VMMs on the same crossbars read transposed;
//! 3. **gradients and factors**: `∇W`, and for K-FAC the factor statistics `A = aᵀa`,
//!    `G = gᵀg`, on the tiles' digital multiply-add units (both designs alike);
//! 4. **factor inversion** (K-FAC, amortised over `inv_every` iterations): every damped factor
//!    of order `n` is programmed into INV arrays and the residual VMM, solved column by column
//!    with `rounds` refinement rounds each, and the inverse programmed into preconditioning VMM
//!    crossbars. Factors run concurrently on the `inv_units` INV units; when the units exceed
//!    what all factors need at once, every factor is replicated on the spare units (with its
//!    residual VMM, programmed once per replica) and its columns split over the replicas. *Fused* mapping puts a
//!    factor's INV arrays, residual VMM and preconditioning VMM in one tile, so vectors move
//!    through the IMA registers; *separate* mapping keeps INV units and VMMs in different
//!    tiles, so every round's residual and correction and every inverse column cross the
//!    eDRAM buffer and two router hops;
//! 5. **preconditioning** (K-FAC): `G^-1 ∇W A^-1` as VMMs on the inverse crossbars
//!    (replicated `copies` times like the weights);
//! 6. **weight update**: the new weights are programmed into the weight crossbars by
//!    write-verify (rows sequential within an array, arrays in parallel).

use super::cost::{
    inv_solve_cost, inv_unit_area_mm2, program_cost, tile_overhead, vmm_crossbar_area_mm2,
    vmm_energy_pj, vmm_latency_ns,
};
use super::inv::{settle_ns, HpConfig};
use super::kfac::Net;
use super::tech::Technology;
use super::xbar::VmmConfig;
use super::ReramError;

/// One layer's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerShape {
    /// Outputs.
    pub outputs: usize,
    /// Inputs (the bias adds one).
    pub inputs: usize,
    /// Input vectors per sample (im2col positions for a convolution, else 1).
    pub rows_per_sample: usize,
}

/// A training workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Name.
    pub name: String,
    /// Layers.
    pub layers: Vec<LayerShape>,
    /// Mini-batch size.
    pub batch: usize,
    /// Iterations between K-FAC inverse recomputations.
    pub inv_every: usize,
}

/// Workload names [`Workload::builtin`] knows.
pub const WORKLOADS: [&str; 3] = ["digits-mlp", "digits-cnn", "mnist-mlp"];

impl Workload {
    /// The network of [`super::kfac`] at batch `batch`.
    pub fn from_net(name: &str, net: Net, batch: usize, inv_every: usize) -> Self {
        Workload {
            name: name.into(),
            layers: net
                .layers()
                .into_iter()
                .map(|(outputs, inputs, rows_per_sample)| LayerShape {
                    outputs,
                    inputs,
                    rows_per_sample,
                })
                .collect(),
            batch,
            inv_every,
        }
    }

    /// `digits-mlp` (64-32-10, batch 64), `digits-cnn` (3×3×8 conv, pool, 10; batch 64) — the
    /// networks trained in [`super::kfac`] — and `mnist-mlp` (784-1024-1024-10, batch 128, the
    /// size of the MLPs in ReRAM training papers); inverses every 10 iterations.
    pub fn builtin(name: &str) -> Result<Self, ReramError> {
        match name {
            "digits-mlp" => Ok(Self::from_net(name, Net::Mlp { hidden: 32 }, 64, 10)),
            "digits-cnn" => Ok(Self::from_net(name, Net::Cnn { channels: 8 }, 64, 10)),
            "mnist-mlp" => Ok(Workload {
                name: name.into(),
                layers: [(1024, 784), (1024, 1024), (10, 1024)]
                    .iter()
                    .map(|&(outputs, inputs)| LayerShape {
                        outputs,
                        inputs,
                        rows_per_sample: 1,
                    })
                    .collect(),
                batch: 128,
                inv_every: 10,
            }),
            _ => Err(ReramError::Param(format!(
                "unknown workload `{name}`; choose one of {}",
                WORKLOADS.join(", ")
            ))),
        }
    }

    /// Orders of the K-FAC factors: `inputs + 1` and `outputs` per layer.
    pub fn factor_orders(&self) -> Vec<usize> {
        self.layers
            .iter()
            .flat_map(|l| [l.inputs + 1, l.outputs])
            .collect()
    }
}

/// How INV and VMM crossbars are mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapping {
    /// INV, residual VMM and preconditioning VMM of a factor in one tile.
    Fused,
    /// INV units and VMMs in different tiles; vectors cross the buffer and the network.
    Separate,
}

impl Mapping {
    /// Parses `fused` or `separate`.
    pub fn parse(s: &str) -> Result<Self, ReramError> {
        match s {
            "fused" => Ok(Mapping::Fused),
            "separate" => Ok(Mapping::Separate),
            _ => Err(ReramError::Param(format!(
                "unknown mapping `{s}`; choose fused or separate"
            ))),
        }
    }
}

/// The accelerator design.
#[derive(Debug, Clone, PartialEq)]
pub struct Accel {
    /// Component costs.
    pub tech: Technology,
    /// Weight (and preconditioning) crossbars.
    pub vmm: VmmConfig,
    /// INV and residual VMM.
    pub hp: HpConfig,
    /// Refinement rounds per solve.
    pub rounds: f64,
    /// Smallest eigenvalue of a damped factor over its largest entry (sets the settling time).
    pub lambda_min: f64,
    /// Mapping.
    pub mapping: Mapping,
    /// INV units (crossbar pairs of `hp.inv.size`).
    pub inv_units: usize,
    /// Replicas of each layer's weight crossbars.
    pub copies: usize,
}

/// One phase of an iteration.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// Name.
    pub name: &'static str,
    /// Latency, ns.
    pub ns: f64,
    /// Energy, pJ.
    pub pj: f64,
}

/// What one training iteration costs.
#[derive(Debug, Clone, PartialEq)]
pub struct IterCost {
    /// Phases, executed one after another.
    pub phases: Vec<Phase>,
    /// Chip area, mm².
    pub area_mm2: f64,
    /// Crossbars (all kinds).
    pub crossbars: usize,
}

impl IterCost {
    /// Latency of one iteration, ns.
    pub fn latency_ns(&self) -> f64 {
        self.phases.iter().map(|p| p.ns).sum()
    }

    /// Energy of one iteration, pJ.
    pub fn energy_pj(&self) -> f64 {
        self.phases.iter().map(|p| p.pj).sum()
    }

    /// A phase's latency, ns (0 when absent).
    pub fn phase_ns(&self, name: &str) -> f64 {
        self.phases
            .iter()
            .filter(|p| p.name == name)
            .map(|p| p.ns)
            .sum()
    }
}

fn check_common(w: &Workload, vmm: &VmmConfig, copies: usize) -> Result<(), ReramError> {
    vmm.check()?;
    if w.layers.is_empty() || w.batch == 0 {
        return Err(ReramError::Param(
            "a workload needs layers and a batch of at least 1".into(),
        ));
    }
    if copies == 0 {
        return Err(ReramError::Param("copies must be at least 1".into()));
    }
    Ok(())
}

/// Forward, backward, gradient phases and the weight update, shared by both designs; returns
/// (phases before the optimizer, weight update, weight crossbars).
fn first_order_phases(
    t: &Technology,
    w: &Workload,
    vmm: &VmmConfig,
    copies: usize,
    factor_stats: bool,
) -> (Vec<Phase>, Phase, usize) {
    let mut fwd_max: f64 = 0.0;
    let (mut fwd_fill, mut fwd_pj) = (0.0, 0.0);
    let mut bwd_max: f64 = 0.0;
    let (mut bwd_fill, mut bwd_pj) = (0.0, 0.0);
    let mut macs = 0.0;
    let mut xbars = 0usize;
    let (mut upd_ns, mut upd_pj): (f64, f64) = (0.0, 0.0);
    for (k, l) in w.layers.iter().enumerate() {
        let vectors = (w.batch * l.rows_per_sample) as f64;
        let per_copy = (vectors / copies as f64).ceil();
        let a = vmm.vmm_activity(l.outputs, l.inputs + 1);
        let t_l = vmm_latency_ns(t, vmm, &a);
        fwd_max = fwd_max.max(per_copy * t_l);
        fwd_fill += t_l;
        fwd_pj += vectors * vmm_energy_pj(t, vmm, &a);
        if k > 0 {
            let b = vmm.vmm_activity(l.inputs + 1, l.outputs);
            let t_b = vmm_latency_ns(t, vmm, &b);
            bwd_max = bwd_max.max(per_copy * t_b);
            bwd_fill += t_b;
            bwd_pj += vectors * vmm_energy_pj(t, vmm, &b);
        }
        let (o, i) = (l.outputs as f64, (l.inputs + 1) as f64);
        macs += vectors * o * i;
        if factor_stats {
            macs += vectors * (i * (i + 1.0) / 2.0 + o * (o + 1.0) / 2.0);
        }
        xbars += a.crossbars * copies;
        // Weight update: rows of each row tile sequential, all arrays (and copies) parallel.
        let rows_per_array = (l.inputs + 1).min(vmm.rows);
        let cells = (l.inputs + 1) * l.outputs * vmm.arrays() * vmm.slices() * copies;
        let (ns, _) = program_cost(t, rows_per_array, 0, 1);
        upd_ns = upd_ns.max(ns);
        upd_pj += cells as f64 * t.program_cell_pj();
    }
    let tiles = tiles_for(t, xbars);
    let mac_ns = macs / (t.digital.macs_per_ns * tiles as f64);
    (
        vec![
            Phase {
                name: "forward",
                ns: fwd_max + fwd_fill,
                pj: fwd_pj,
            },
            Phase {
                name: "backward",
                ns: bwd_max + bwd_fill,
                pj: bwd_pj,
            },
            Phase {
                name: "gradients",
                ns: mac_ns,
                pj: macs * t.digital.mac_pj,
            },
        ],
        Phase {
            name: "weight update",
            ns: upd_ns,
            pj: upd_pj,
        },
        xbars,
    )
}

fn tiles_for(t: &Technology, crossbars: usize) -> usize {
    let per_tile = t.organization.crossbars_per_ima * t.organization.imas_per_tile;
    crossbars.div_ceil(per_tile).max(1)
}

/// Chip area: the crossbars with their peripherals (`xbar_mm2`), other units (`extra_mm2`) and
/// the tile-level components of the tiles the `crossbars` fill.
fn area(t: &Technology, crossbars: usize, xbar_mm2: f64, extra_mm2: f64) -> f64 {
    xbar_mm2 + extra_mm2 + tiles_for(t, crossbars) as f64 * tile_overhead(t).area_mm2()
}

/// One first-order (SGD) iteration on a PipeLayer-style pipeline: forward and backward on the
/// weight crossbars, gradients digitally, weights reprogrammed every iteration.
pub fn pipelayer_iteration(
    t: &Technology,
    w: &Workload,
    vmm: &VmmConfig,
    copies: usize,
) -> Result<IterCost, ReramError> {
    check_common(w, vmm, copies)?;
    let (mut phases, update, xbars) = first_order_phases(t, w, vmm, copies, false);
    phases.push(update);
    Ok(IterCost {
        phases,
        area_mm2: area(t, xbars, xbars as f64 * vmm_crossbar_area_mm2(t, vmm), 0.0),
        crossbars: xbars,
    })
}

/// One K-FAC iteration on the accelerator.
pub fn kfac_iteration(w: &Workload, acc: &Accel) -> Result<IterCost, ReramError> {
    let t = &acc.tech;
    check_common(w, &acc.vmm, acc.copies)?;
    acc.hp.inv.check()?;
    acc.hp.vmm.check()?;
    if acc.inv_units == 0
        || !(1.0..f64::INFINITY).contains(&acc.rounds)
        || acc.lambda_min.is_nan()
        || acc.lambda_min <= 0.0
    {
        return Err(ReramError::Param(
            "inv_units and rounds must be at least 1 and lambda_min positive".into(),
        ));
    }
    let (mut phases, update, weight_xbars) = first_order_phases(t, w, &acc.vmm, acc.copies, true);
    let inv = &acc.hp.inv;
    let res = &acc.hp.vmm;
    let settle = settle_ns(inv.adc_bits, inv.gbw_hz, acc.lambda_min);
    let move_byte_pj = t.edram_byte_pj() + 2.0 * t.router_byte_pj();
    let move_byte_ns = 1.0 / t.edram.bytes_per_ns.min(t.router.bytes_per_ns);
    // Per factor: (units needed, latency, energy).
    let mut jobs = Vec::new();
    let (mut res_xbars, mut pre_xbars) = (0usize, 0usize);
    // Spare INV units hold replicas of every factor (with their residual VMMs), each solving
    // a share of the columns: r = units available over units all factors need at once.
    let need: usize = w
        .factor_orders()
        .iter()
        .map(|n| n.div_ceil(inv.size).pow(2))
        .sum();
    let replicas = (acc.inv_units / need.max(1)).max(1);
    for n in w.factor_orders() {
        let units = n.div_ceil(inv.size).pow(2);
        if units > acc.inv_units {
            return Err(ReramError::Param(format!(
                "a factor of order {n} needs {units} INV units of {0}x{0}; the design has {1}",
                inv.size, acc.inv_units
            )));
        }
        let (solve_ns, solve_pj) = inv_solve_cost(t, inv, n, settle);
        let ra = res.vmm_activity(n, n);
        let (res_ns, res_pj) = (vmm_latency_ns(t, res, &ra), vmm_energy_pj(t, res, &ra));
        let pa = acc.vmm.vmm_activity(n, n);
        // Bytes per round: the residual in (3 bytes per element at 24 bits) and the correction
        // out (1 byte at 8 bits); per column, the finished inverse column (2 bytes).
        let (round_bytes, col_bytes) = match acc.mapping {
            Mapping::Fused => (0.0, 0.0),
            Mapping::Separate => (
                n as f64 * (f64::from(res.input_bits.div_ceil(8)) + 1.0),
                n as f64 * f64::from(acc.vmm.input_bits.div_ceil(8)),
            ),
        };
        let round_ns = solve_ns + res_ns + round_bytes * move_byte_ns;
        let round_pj = solve_pj + res_pj + round_bytes * move_byte_pj;
        // The first round needs no residual VMM.
        let col_ns = acc.rounds * round_ns - res_ns + col_bytes * move_byte_ns;
        let col_pj = acc.rounds * round_pj - res_pj + col_bytes * move_byte_pj;
        // Programming: INV arrays (both signs), residual VMM, preconditioning VMM.
        let inv_rows = n.min(inv.size);
        let (p_inv_ns, p_inv_pj) = program_cost(t, inv_rows, 0, 1);
        let inv_cells_pj = (2 * n * n) as f64 * t.program_cell_pj();
        let res_cells = n * n * res.arrays() * res.slices();
        let pre_cells = n * n * acc.vmm.arrays() * acc.vmm.slices();
        let (p_res_ns, _) = program_cost(t, n.min(res.rows), 0, 1);
        let (p_pre_ns, _) = program_cost(t, n.min(acc.vmm.rows), 0, 1);
        let prog_pj =
            p_inv_pj + inv_cells_pj + (res_cells + pre_cells) as f64 * t.program_cell_pj();
        let r = replicas.min(n);
        let ns = p_inv_ns.max(p_res_ns) + n.div_ceil(r) as f64 * col_ns + p_pre_ns;
        let pj = r as f64 * prog_pj + n as f64 * col_pj;
        jobs.push((units * r, ns, pj));
        res_xbars += ra.crossbars * r;
        pre_xbars += pa.crossbars * acc.copies;
    }
    let inv_area = acc.inv_units as f64 * inv_unit_area_mm2(t, inv);
    // Factors on the INV units: the makespan is at least the longest factor and at least the
    // total unit-time over the units.
    let longest = jobs.iter().fold(0.0f64, |m, j| m.max(j.1));
    let work: f64 = jobs.iter().map(|j| j.0 as f64 * j.1).sum();
    let inv_ns = longest.max(work / acc.inv_units as f64);
    let inv_pj: f64 = jobs.iter().map(|j| j.2).sum();
    let every = w.inv_every.max(1) as f64;
    phases.push(Phase {
        name: "factor inversion",
        ns: inv_ns / every,
        pj: inv_pj / every,
    });
    // Preconditioning: per layer (inputs+1) VMMs on G^-1 and `outputs` on A^-1; layers in
    // parallel.
    let (mut pre_ns, mut pre_pj): (f64, f64) = (0.0, 0.0);
    for l in &w.layers {
        let i = l.inputs + 1;
        let g = acc.vmm.vmm_activity(l.outputs, l.outputs);
        let a = acc.vmm.vmm_activity(i, i);
        // The inverse crossbars are replicated like the weights (`copies`).
        let c = acc.copies as f64;
        let ns = (i as f64 / c).ceil() * vmm_latency_ns(t, &acc.vmm, &g)
            + (l.outputs as f64 / c).ceil() * vmm_latency_ns(t, &acc.vmm, &a);
        pre_ns = pre_ns.max(ns);
        pre_pj += i as f64 * vmm_energy_pj(t, &acc.vmm, &g)
            + l.outputs as f64 * vmm_energy_pj(t, &acc.vmm, &a);
    }
    phases.push(Phase {
        name: "preconditioning",
        ns: pre_ns,
        pj: pre_pj,
    });
    phases.push(update);
    let vmm_xbars = weight_xbars + pre_xbars;
    let xbar_mm2 = vmm_xbars as f64 * vmm_crossbar_area_mm2(t, &acc.vmm)
        + res_xbars as f64 * vmm_crossbar_area_mm2(t, res);
    Ok(IterCost {
        phases,
        area_mm2: area(t, vmm_xbars + res_xbars, xbar_mm2, inv_area),
        crossbars: vmm_xbars + res_xbars + acc.inv_units * 2,
    })
}
