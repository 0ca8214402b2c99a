//! The lean bench driver behind `gpubench`: a TOML file lists attention, decode and PQ-decode
//! cases; each is built, checked against the fp64 reference on fresh random inputs with
//! poisoned outputs, timed with the harness, and written as one CSV row per (case, variant).

use crate::attention::{self, AttnProblem, AttnVariant, DeviceAttn, DeviceMask, HostAttn};
use crate::decode::{DecodeProblem, Fp16Decode, HostDecode, PqCache, PqDecode, PqKernel};
use crate::device::{nvidia_smi_state, Gpu};
use crate::harness::{Harness, Timing, TimingConfig};
use crate::mask::MaskSpec;
use crate::search::{self, Ceilings};
use crate::{Dtype, GpuError, Result};
use std::fmt::Write as _;

/// One value or a list of values in the bench file.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// A single value.
    One(T),
    /// Several values (swept).
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    /// The values.
    pub fn values(&self) -> Vec<T> {
        match self {
            OneOrMany::One(x) => vec![x.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// Which attention variants to time.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum VariantChoice {
    /// "search" (model prunes, measurement decides) or "all".
    Mode(String),
    /// Explicit labels such as "block-m128-n64" or "rows".
    List(Vec<String>),
}

/// A masked-attention case.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionCase {
    /// Case name.
    pub name: String,
    /// The mask.
    pub mask: MaskSpec,
    /// Sequences.
    pub batch: usize,
    /// Query heads.
    pub heads: usize,
    /// KV heads (defaults to `heads`).
    pub kv_heads: Option<usize>,
    /// Sequence lengths (queries = keys).
    pub seq: OneOrMany<usize>,
    /// Head dims.
    pub head_dim: OneOrMany<usize>,
    /// Element types.
    pub dtype: OneOrMany<Dtype>,
    /// Variants to time.
    #[serde(default = "default_variants")]
    pub variants: VariantChoice,
    /// Stage-2 candidates kept by the model in "search" mode.
    #[serde(default = "default_keep")]
    pub keep: usize,
}

impl AttentionCase {
    /// The problem of this case at sequence length `n`, head dim `d` and element type `dtype`.
    pub fn problem(&self, n: usize, d: usize, dtype: Dtype) -> AttnProblem {
        AttnProblem {
            batch: self.batch,
            heads: self.heads,
            kv_heads: self.kv_heads.unwrap_or(self.heads),
            n_q: n,
            n_kv: n,
            head_dim: d,
            dtype,
        }
    }
}

fn default_variants() -> VariantChoice {
    VariantChoice::Mode("search".into())
}
fn default_keep() -> usize {
    3
}

/// A decode case (fp16 cache, and PQ caches when `pq_m` is given).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecodeCase {
    /// Case name.
    pub name: String,
    /// Sequences.
    pub batch: usize,
    /// Query heads.
    pub heads: usize,
    /// KV heads (defaults to `heads`).
    pub kv_heads: Option<usize>,
    /// Context lengths.
    pub len: OneOrMany<usize>,
    /// Head dim.
    pub head_dim: usize,
    /// Element type.
    #[serde(default = "default_dtype")]
    pub dtype: Dtype,
    /// Split counts for the fp16 kernel.
    pub splits: OneOrMany<usize>,
    /// PQ subspace counts (none: fp16 only).
    #[serde(default)]
    pub pq_m: Vec<usize>,
    /// PQ recent-token windows.
    #[serde(default)]
    pub pq_window: Vec<usize>,
    /// Split counts for the PQ kernel.
    #[serde(default)]
    pub pq_splits: Vec<usize>,
    /// Threads per block for the PQ kernel (each kernel runs the counts it supports).
    #[serde(default = "default_pq_threads")]
    pub pq_threads: Vec<usize>,
    /// PQ kernels to run ("smem", "lanes"; both by default).
    #[serde(default = "default_pq_kernels")]
    pub pq_kernels: Vec<PqKernel>,
}

fn default_pq_threads() -> Vec<usize> {
    vec![512]
}

fn default_pq_kernels() -> Vec<PqKernel> {
    vec![PqKernel::Smem, PqKernel::Lanes]
}

fn default_dtype() -> Dtype {
    Dtype::F16
}

/// Correctness-check settings.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckConfig {
    /// Sampled rows per attention case.
    pub rows: usize,
    /// Seed of inputs and samples (each case and repetition derives its own).
    pub seed: u64,
    /// Largest accepted norm-relative error for fp16 (bf16 gets 8x: its unit roundoff).
    pub max_rel_err_f16: f64,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            rows: 256,
            seed: 1,
            max_rel_err_f16: 2e-3,
        }
    }
}

/// The bench file.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchConfig {
    /// Timing settings.
    #[serde(default)]
    pub timing: TimingConfig,
    /// Checking settings.
    #[serde(default)]
    pub check: CheckConfig,
    /// Bytes for the copy-bandwidth probe (0 skips it).
    #[serde(default = "default_copy_bytes")]
    pub copy_bytes: usize,
    /// Stage-1 model ceilings (defaults: H100).
    #[serde(default = "Ceilings::h100")]
    pub ceilings: Ceilings,
    /// Masked-attention cases.
    #[serde(default)]
    pub attention: Vec<AttentionCase>,
    /// Decode cases.
    #[serde(default)]
    pub decode: Vec<DecodeCase>,
}

fn default_copy_bytes() -> usize {
    1 << 31
}

impl BenchConfig {
    /// Parses a bench file, naming it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Self> {
        let c: BenchConfig =
            toml::from_str(text).map_err(|e| GpuError::Config(format!("{path}: {e}")))?;
        for a in &c.attention {
            for &n in &a.seq.values() {
                a.mask.validate(n, n).map_err(|e| {
                    GpuError::Config(format!("{path}: attention case {}: {e}", a.name))
                })?;
                for &d in &a.head_dim.values() {
                    let p = a.problem(n, d, Dtype::F16);
                    p.validate().map_err(|e| {
                        GpuError::Config(format!("{path}: attention case {}: {e}", a.name))
                    })?;
                }
            }
            if let VariantChoice::Mode(m) = &a.variants {
                if m != "search" && m != "all" {
                    return Err(GpuError::Config(format!("{path}: attention case {}: variants = {m:?} (valid: \"search\", \"all\", or a list of labels)", a.name)));
                }
            }
        }
        Ok(c)
    }
}

/// One CSV row.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// "attention", "decode_fp16", "decode_pq" or "copy".
    pub kind: String,
    /// Case name.
    pub case: String,
    /// Mask label or cache description.
    pub mask: String,
    /// Element type.
    pub dtype: String,
    /// Shape: batch, heads, kv_heads, n_q, n_kv, head_dim.
    pub shape: [usize; 6],
    /// Variant label.
    pub variant: String,
    /// Whether the search selected this variant.
    pub selected: bool,
    /// Stage-1 prediction, µs (NaN if none).
    pub predicted_us: f64,
    /// Timing.
    pub timing: Option<Timing>,
    /// Useful FLOPs (unmasked work only).
    pub useful_flops: f64,
    /// Bytes that must move.
    pub bytes: f64,
    /// Norm-relative error against fp64.
    pub rel_err: f64,
    /// Largest absolute error.
    pub max_abs_err: f64,
    /// Registers per thread.
    pub regs: i32,
    /// Local-memory bytes per thread (spills).
    pub local_bytes: i32,
}

/// CSV header of [`Row`]s.
pub const CSV_HEADER: &str = "kind,case,mask,dtype,batch,heads,kv_heads,n_q,n_kv,head_dim,variant,selected,predicted_us,median_us,p10_us,p90_us,min_us,reps,useful_tflops,gbytes_per_s,bw_fraction,rel_err,max_abs_err,regs,local_bytes,device,smi";

/// Runs every case; returns CSV text (header included). `log` receives progress lines.
pub fn run(gpu: &Gpu, cfg: &BenchConfig, mut log: impl FnMut(&str)) -> Result<String> {
    let mut h = Harness::new(gpu)?;
    let mut rows = Vec::new();
    let mut copy_bw = f64::NAN;
    if cfg.copy_bytes > 0 {
        let (bw, t) = h.copy_bandwidth(cfg.copy_bytes, &cfg.timing)?;
        copy_bw = bw;
        log(&format!(
            "copy {} MB: {:.0} GB/s (read + write)",
            cfg.copy_bytes >> 20,
            bw / 1e9
        ));
        rows.push(Row {
            kind: "copy".into(),
            case: "copy".into(),
            variant: "copy_u4".into(),
            timing: Some(t),
            bytes: 2.0 * cfg.copy_bytes as f64,
            rel_err: 0.0,
            predicted_us: f64::NAN,
            ..Default::default()
        });
    }
    let mut seed = cfg.check.seed;
    for case in &cfg.attention {
        for &n in &case.seq.values() {
            for &d in &case.head_dim.values() {
                for &dtype in &case.dtype.values() {
                    let p = case.problem(n, d, dtype);
                    seed += 1;
                    rows.extend(run_attention(gpu, &mut h, cfg, case, &p, seed, &mut log)?);
                }
            }
        }
    }
    for case in &cfg.decode {
        for &len in &case.len.values() {
            let p = DecodeProblem {
                batch: case.batch,
                heads: case.heads,
                kv_heads: case.kv_heads.unwrap_or(case.heads),
                len,
                head_dim: case.head_dim,
                dtype: case.dtype,
            };
            seed += 1;
            rows.extend(run_decode(gpu, &mut h, cfg, case, &p, seed, &mut log)?);
        }
    }
    let smi = nvidia_smi_state();
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for r in &rows {
        let t = r.timing.unwrap_or(Timing::from_samples(vec![]));
        let secs = t.median_us * 1e-6;
        let gbs = r.bytes / secs / 1e9;
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{},{:.2},{:.1},{:.4},{:.3e},{:.3e},{},{},\"{}\",\"{}\"",
            r.kind, r.case, r.mask, r.dtype, r.shape[0], r.shape[1], r.shape[2], r.shape[3], r.shape[4], r.shape[5], r.variant, r.selected,
            r.predicted_us, t.median_us, t.p10_us, t.p90_us, t.min_us, t.reps,
            r.useful_flops / secs / 1e12, gbs, gbs * 1e9 / copy_bw, r.rel_err, r.max_abs_err, r.regs, r.local_bytes,
            gpu.info.name, smi
        );
    }
    Ok(out)
}

fn tolerance(cfg: &BenchConfig, dtype: Dtype) -> f64 {
    cfg.check.max_rel_err_f16 * dtype.unit_roundoff() / Dtype::F16.unit_roundoff()
}

fn run_attention(
    gpu: &Gpu,
    h: &mut Harness,
    cfg: &BenchConfig,
    case: &AttentionCase,
    p: &AttnProblem,
    seed: u64,
    log: &mut impl FnMut(&str),
) -> Result<Vec<Row>> {
    let ranked = search::rank(p, &case.mask, &cfg.ceilings, 0.02, gpu.arch() == "sm_90a");
    let chosen: Vec<(AttnVariant, f64)> = match &case.variants {
        VariantChoice::Mode(m) if m == "search" => ranked
            .iter()
            .take(case.keep.max(1))
            .map(|r| (r.variant, r.time_us))
            .collect(),
        VariantChoice::Mode(_) => ranked.iter().map(|r| (r.variant, r.time_us)).collect(),
        VariantChoice::List(l) => {
            let mut v = Vec::new();
            for label in l {
                let var = AttnVariant::parse(label)?;
                let pred = ranked
                    .iter()
                    .find(|r| r.variant == var)
                    .map_or(f64::NAN, |r| r.time_us);
                v.push((var, pred));
            }
            v
        }
    };
    let host = HostAttn::random(p, seed);
    let mut dev = DeviceAttn::new(gpu, p, &host)?;
    let mut rows = Vec::new();
    for (variant, pred) in chosen {
        if variant.smem_bytes(p.head_dim) > gpu.info.smem_optin_bytes as usize {
            continue;
        }
        let dmask = DeviceMask::new(gpu, &case.mask, p, variant)?;
        // Correctness on the timed inputs, output poisoned first.
        h.poison(&mut dev.o, 0xffff_ffff)?;
        h.poison(&mut dev.lse, 0xffff_ffff)?;
        attention::launch(gpu, p, variant, &mut dev, &dmask)?;
        gpu.sync()?;
        let o = attention::download(gpu, &dev.o, "O")?;
        let lse = attention::download(gpu, &dev.lse, "LSE")?;
        let chk = attention::check(
            p,
            &case.mask,
            &host,
            &o,
            &lse,
            cfg.check.rows,
            seed ^ 0x5eed,
        );
        let tol = tolerance(cfg, p.dtype);
        if chk.unwritten > 0 || chk.out.relative().is_nan() || chk.out.relative() > tol {
            return Err(GpuError::Check(format!(
                "{} {} {} n={} d={}: relative error {:.3e} (tolerance {tol:.1e}), {} unwritten outputs, lse error {:.2e}",
                case.name, case.mask.label(), variant.label(), p.n_q, p.head_dim, chk.out.relative(), chk.unwritten, chk.lse_max_abs
            )));
        }
        let (regs, local) = attention::resources(gpu, p, variant)?;
        let t = h.time(&cfg.timing, || {
            attention::launch(gpu, p, variant, &mut dev, &dmask)
        })?;
        let allowed = dmask.allowed_per_head(p.batch);
        let flops = p.flops(allowed);
        log(&format!(
            "attention {:<14} {:<26} {} n={:<6} d={} {:<15} {:>9.1} us {:>6.1} TFLOP/s  err {:.2e}  pred {:.0} us  regs {regs} local {local}",
            case.name, case.mask.label(), p.dtype.name(), p.n_q, p.head_dim, variant.label(), t.median_us, flops / t.median_us / 1e6, chk.out.relative(), pred
        ));
        rows.push(Row {
            kind: "attention".into(),
            case: case.name.clone(),
            mask: case.mask.label(),
            dtype: p.dtype.name().into(),
            shape: [p.batch, p.heads, p.kv_heads, p.n_q, p.n_kv, p.head_dim],
            variant: variant.label(),
            selected: false,
            predicted_us: pred,
            timing: Some(t),
            useful_flops: flops,
            bytes: (2 * p.q_len() + 2 * p.kv_len()) as f64 * 2.0,
            rel_err: chk.out.relative(),
            max_abs_err: chk.out.max_abs,
            regs,
            local_bytes: local,
        });
    }
    mark_best(&mut rows);
    Ok(rows)
}

fn run_decode(
    gpu: &Gpu,
    h: &mut Harness,
    cfg: &BenchConfig,
    case: &DecodeCase,
    p: &DecodeProblem,
    seed: u64,
    log: &mut impl FnMut(&str),
) -> Result<Vec<Row>> {
    p.validate()?;
    let host = HostDecode::random(p, seed);
    let want = host.reference(p);
    let tol = tolerance(cfg, p.dtype);
    let shape = [p.batch, p.heads, p.kv_heads, 1, p.len, p.head_dim];
    let mut rows = Vec::new();
    for &splits in &case.splits.values() {
        let mut dec = Fp16Decode::new(gpu, p, &host, splits)?;
        h.poison(&mut dec.o, 0xffff_ffff)?;
        dec.launch(gpu, p)?;
        gpu.sync()?;
        let err = dec.check(gpu, p, &want)?;
        if err.relative().is_nan() || err.relative() > tol {
            return Err(GpuError::Check(format!(
                "decode {} len {} splits {splits}: relative error {:.3e} (tolerance {tol:.1e})",
                case.name,
                p.len,
                err.relative()
            )));
        }
        let t = h.time(&cfg.timing, || dec.launch(gpu, p))?;
        log(&format!(
            "decode {:<10} len {:<6} splits {:<4} {:>8.1} us {:>7.0} GB/s err {:.2e}",
            case.name,
            p.len,
            splits,
            t.median_us,
            p.fp16_bytes() / t.median_us / 1e3,
            err.relative()
        ));
        rows.push(Row {
            kind: "decode_fp16".into(),
            case: case.name.clone(),
            mask: format!("{}-cache", p.dtype.name()),
            dtype: p.dtype.name().into(),
            shape,
            variant: format!("split{splits}"),
            predicted_us: f64::NAN,
            timing: Some(t),
            useful_flops: 4.0 * (p.batch * p.heads * p.len * p.head_dim) as f64,
            bytes: p.fp16_bytes(),
            rel_err: err.relative(),
            max_abs_err: err.max_abs,
            ..Default::default()
        });
    }
    mark_best(&mut rows);
    for &m in &case.pq_m {
        for &window in &case.pq_window {
            let cache = PqCache::random(p, m, window, seed + 17)?;
            let want_pq = cache.reference(p, &host.q);
            let mut best: Vec<Row> = Vec::new();
            let configs = case.pq_kernels.iter().flat_map(|&k| {
                case.pq_splits.iter().flat_map(move |&s| {
                    case.pq_threads
                        .iter()
                        .filter(move |t| k.threads().contains(t) && k.supports(m, p.head_dim))
                        .map(move |&t| (k, s, t))
                })
            });
            for (kernel, splits, threads) in configs {
                let mut dec = PqDecode::new(gpu, p, &host.q, &cache, kernel, splits, threads)?;
                h.poison(&mut dec.o, 0xffff_ffff)?;
                dec.launch(gpu, p)?;
                gpu.sync()?;
                let err = dec.check(gpu, p, &want_pq)?;
                if err.relative().is_nan() || err.relative() > tol {
                    return Err(GpuError::Check(format!("pq decode {} {} m {m} window {window} splits {splits}: relative error {:.3e} (tolerance {tol:.1e})", case.name, kernel.name(), err.relative())));
                }
                let t = h.time(&cfg.timing, || dec.launch(gpu, p))?;
                // The smem kernel keeps the labels of the runs before the lanes kernel existed.
                let variant = match kernel {
                    PqKernel::Smem => format!("split{}-t{threads}", dec.splits),
                    PqKernel::Lanes => format!("lanes-split{}-t{threads}", dec.splits),
                };
                log(&format!("pq     {:<10} len {:<6} m {m:<3} win {window:<4} {variant:<22} {:>8.1} us {:>7.0} GB/s err {:.2e}", case.name, p.len, t.median_us, cache.bytes(p) / t.median_us / 1e3, err.relative()));
                best.push(Row {
                    kind: "decode_pq".into(),
                    case: case.name.clone(),
                    mask: format!("pq-m{m}-w{window}"),
                    dtype: p.dtype.name().into(),
                    shape,
                    variant,
                    predicted_us: f64::NAN,
                    timing: Some(t),
                    useful_flops: 4.0 * (p.batch * p.heads * p.len * p.head_dim) as f64,
                    bytes: cache.bytes(p),
                    rel_err: err.relative(),
                    max_abs_err: err.max_abs,
                    ..Default::default()
                });
            }
            mark_best(&mut best);
            rows.extend(best);
        }
    }
    Ok(rows)
}

/// Marks the fastest row as the selected one.
fn mark_best(rows: &mut [Row]) {
    if let Some(b) = rows.iter_mut().min_by(|a, b| {
        let ta = a.timing.map_or(f64::INFINITY, |t| t.median_us);
        let tb = b.timing.map_or(f64::INFINITY, |t| t.median_us);
        ta.total_cmp(&tb)
    }) {
        b.selected = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_files_parse_and_bad_ones_are_named() {
        let ok = r#"
[timing]
warmup = 2
reps = 5
[[attention]]
name = "causal"
mask = { kind = "causal" }
batch = 1
heads = 2
seq = [256, 512]
head_dim = 64
dtype = ["f16", "bf16"]
variants = ["block-m64-n64", "rows"]
[[decode]]
name = "d"
batch = 1
heads = 2
len = 1024
head_dim = 128
splits = [4]
pq_m = [32]
pq_window = [0, 64]
pq_splits = [2]
"#;
        let c = BenchConfig::parse(ok, "b.toml").unwrap();
        assert_eq!(c.attention[0].seq.values(), vec![256, 512]);
        assert_eq!(c.timing.reps, 5);
        let e = BenchConfig::parse(
            &ok.replace("kind = \"causal\"", "kind = \"diagonal\""),
            "b.toml",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("b.toml") && e.to_string().contains("diagonal"),
            "{e}"
        );
        let e = BenchConfig::parse(&ok.replace("head_dim = 64", "head_dim = 96"), "b.toml")
            .unwrap_err();
        assert!(e.to_string().contains("valid: 64, 128"), "{e}");
        let e = BenchConfig::parse(
            &ok.replace("warmup = 2", "warmup = 2\nwarmpu = 3"),
            "b.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("warmpu"), "{e}");
        assert!(AttnVariant::parse("block-m96-n64").is_err());
        assert_eq!(
            AttnVariant::parse("block-m128-n32").unwrap(),
            AttnVariant::Block {
                warps: 8,
                block_n: 32
            }
        );
    }
}
