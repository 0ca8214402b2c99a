//! Design models for sweeps: `gemv.lowbit` (a weight format and quantizer for one linear layer:
//! kernel latency on H100, bytes, accuracy on MiniLM) and `precision.switch` (the INT8/INT4
//! switching policy: average bits, accuracy, simulated decoder token latency).

use std::sync::{Arc, OnceLock};

use crate::{cat, num};
use dse::model::{
    Direction, EvalContext, MetricSpec, Model, ModelError, ModelInfo, ParamSpec, Value,
};
use gpu::lowbit::Format;

use super::latency::{traffic_bytes, KernelModel};
use super::minilm::{sentences, weights_path, MiniLm};
use super::switch::{Decoder, Rule, SwitchStudy, TokenLatency};
use super::{committed_accuracy, Quantizer};

fn infeasible(s: String) -> ModelError {
    ModelError::Infeasible(s)
}

/// `gemv.lowbit`: one linear layer's weights in a low-bit format.
pub struct LowbitGemv {
    info: ModelInfo,
}

impl LowbitGemv {
    /// The model on the committed H100 measurements and MiniLM accuracy table.
    pub fn new() -> Self {
        let params = vec![
            ParamSpec::categorical(
                "format",
                &["lut2", "lut3", "lut4", "int4", "int8", "fp16"],
                "lut3",
                "kernel weight format: 2-4-bit codes with centroid tables, INT8, INT4 nested in INT8, fp16",
            ),
            ParamSpec::categorical(
                "quantizer",
                &["clustered", "uniform"],
                "clustered",
                "lut formats: k-means centroids or a uniform grid (round to nearest); ignored by int4, int8, fp16",
            ),
            ParamSpec::categorical(
                "group",
                &["row", "128", "32"],
                "row",
                "lut formats: weights sharing a table (the measured kernel has one per row; groups are modelled by their bytes); ignored by int4, int8, fp16",
            ),
            ParamSpec::boolean(
                "smoothing",
                false,
                "lut formats: activation smoothing (alpha 0.5) before quantizing; ignored by int4, int8, fp16",
            ),
            ParamSpec::int("batch", 1, 32, 1, "", "activation rows (tokens)"),
            ParamSpec::int("k", 64, 65536, 4096, "", "inputs (a multiple of 64)"),
            ParamSpec::int("n", 1, 262144, 4096, "", "outputs"),
        ];
        let metrics = vec![
            MetricSpec::new(
                "latency_us",
                "us",
                Direction::Minimize,
                "kernel time on H100: measured where the format, shape and batch were, else the per-(format, batch) bytes fit",
            ),
            MetricSpec::new(
                "speedup_vs_cublas",
                "x",
                Direction::Maximize,
                "cuBLAS fp16 time (measured in the same run, or its fit) over this kernel's",
            ),
            MetricSpec::new(
                "weight_mb",
                "MB",
                Direction::Minimize,
                "weight, table and scale bytes",
            ),
            MetricSpec::new(
                "bits_per_weight",
                "bit",
                Direction::Minimize,
                "weight bytes x 8 over the weights",
            ),
            MetricSpec::new(
                "bw_fraction",
                "",
                Direction::Maximize,
                "bytes moved per second over the copy bandwidth measured in the same run",
            ),
            MetricSpec::new(
                "mean_cos",
                "",
                Direction::Maximize,
                "all-MiniLM-L6-v2 with every linear layer so quantized: mean cosine of the sentence embeddings with fp32 (results/lowbit/accuracy.csv)",
            ),
            MetricSpec::new(
                "measured",
                "",
                Direction::Maximize,
                "1 when the latency is a measurement, 0 when modelled",
            ),
        ];
        LowbitGemv {
            info: ModelInfo {
                name: "gemv.lowbit".into(),
                version: "1".into(),
                summary: "low-bit weight GEMV/GEMM on H100: latency (measured or fitted), bytes, MiniLM accuracy per format and quantizer".into(),
                params,
                metrics,
            },
        }
    }
}

impl Default for LowbitGemv {
    fn default() -> Self {
        Self::new()
    }
}

impl Model for LowbitGemv {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn evaluate(&self, p: &[Value], _ctx: &EvalContext) -> Result<Vec<f64>, ModelError> {
        let format = Format::parse(cat(p, 0)).map_err(|e| infeasible(e.to_string()))?;
        let (quantizer, group, smoothing) = (cat(p, 1), cat(p, 2), p[3] == Value::Bool(true));
        let (batch, k, n) = (num(p, 4) as usize, num(p, 5) as usize, num(p, 6) as usize);
        if !k.is_multiple_of(64) {
            return Err(infeasible(format!(
                "k = {k}: the kernel takes inputs in multiples of 64"
            )));
        }
        let g: usize = match group {
            "row" => 0,
            g => g
                .parse()
                .map_err(|_| infeasible(format!("group {g}; choose row, 128 or 32")))?,
        };
        let bits = format.bits();
        let q = match format {
            Format::Lut2 | Format::Lut3 | Format::Lut4 => {
                Quantizer::from_fields(quantizer, bits, g).map_err(infeasible)?
            }
            Format::Int8 => Quantizer::Int8,
            Format::Int4 => Quantizer::Int4,
            Format::Fp16 => Quantizer::Fp16,
        };
        // quantizer, group and smoothing apply to the lut formats only.
        let lut = matches!(format, Format::Lut2 | Format::Lut3 | Format::Lut4);
        let (g, smoothing) = if lut { (g, smoothing) } else { (0, false) };
        let alpha = if smoothing { 0.5 } else { 0.0 };
        let acc = committed_accuracy()
            .iter()
            .find(|a| a.quantizer == q && (a.alpha as f64 - alpha).abs() < 1e-6)
            .ok_or_else(|| {
                infeasible(format!(
                    "no accuracy measured for {} with smoothing {alpha} (results/lowbit/accuracy.csv)",
                    q.label()
                ))
            })?;
        let weight_bytes = if g == 0 {
            format.weight_bytes(n, k) as f64
        } else {
            if !k.is_multiple_of(g) {
                return Err(infeasible(format!("group {g} does not divide k = {k}")));
            }
            let per_group = if quantizer == "clustered" {
                2 << bits
            } else {
                4
            };
            (n * k * bits as usize / 8 + n * (k / g) * per_group) as f64
        };
        let m = KernelModel::committed();
        let t = m.ours_bytes_us(format, k, n, batch, weight_bytes);
        let peer = m.cublas_us(k, n, batch);
        let traffic = traffic_bytes(weight_bytes, k, n, batch);
        Ok(vec![
            t.us,
            peer.us / t.us,
            weight_bytes / 1e6,
            weight_bytes * 8.0 / (n * k) as f64,
            traffic / (t.us * 1e-6) / (m.copy_gbytes_per_s * 1e9),
            acc.mean_cos,
            if t.measured { 1.0 } else { 0.0 },
        ])
    }
}

/// `precision.switch`: the INT8/INT4 switching policy.
pub struct PrecisionSwitch {
    info: ModelInfo,
    study: OnceLock<Result<Arc<SwitchStudy>, String>>,
}

impl PrecisionSwitch {
    /// The model; MiniLM is loaded and calibrated at the first evaluation.
    pub fn new() -> Self {
        let params = vec![
            ParamSpec::log_real(
                "threshold",
                0.05,
                20.0,
                1.0,
                "",
                "INT4 when the layer's calibrated KL over the median KL, times the entropy factor, is at most this",
            ),
            ParamSpec::real(
                "beta",
                -3.0,
                3.0,
                -1.0,
                "",
                "exponent of the token's previous-layer attention entropy relative to its calibration mean (0: static per-layer mix)",
            ),
            ParamSpec::categorical(
                "decoder",
                &["llama-7b", "llama-70b"],
                "llama-7b",
                "decoder whose token latency is simulated from the measured kernels",
            ),
            ParamSpec::int(
                "context",
                1,
                1 << 20,
                1024,
                "tokens",
                "cached tokens of the decode attention",
            ),
        ];
        let metrics = vec![
            MetricSpec::new(
                "int4_share",
                "",
                Direction::Maximize,
                "fraction of (token, layer) pairs run in INT4 on MiniLM",
            ),
            MetricSpec::new(
                "avg_bits",
                "bit",
                Direction::Minimize,
                "average bits per weight read (with the per-row scale)",
            ),
            MetricSpec::new(
                "mean_cos",
                "",
                Direction::Maximize,
                "MiniLM sentence embeddings: mean cosine with fp32",
            ),
            MetricSpec::new(
                "search_kl",
                "nats",
                Direction::Minimize,
                "mean KL of the search distribution from fp32's",
            ),
            MetricSpec::new(
                "token_us",
                "us",
                Direction::Minimize,
                "simulated decoder token time at batch 1 (linear layers + decode attention)",
            ),
            MetricSpec::new(
                "speedup_vs_int8",
                "x",
                Direction::Maximize,
                "static INT8 token time over this policy's",
            ),
        ];
        PrecisionSwitch {
            info: ModelInfo {
                name: "precision.switch".into(),
                version: "1".into(),
                summary: "dynamic INT8/INT4 switching per layer and token (KL calibration, attention entropy): bits, MiniLM accuracy, simulated token latency".into(),
                params,
                metrics,
            },
            study: OnceLock::new(),
        }
    }

    fn study(&self) -> Result<Arc<SwitchStudy>, ModelError> {
        self.study
            .get_or_init(|| {
                let path = weights_path();
                let bytes = std::fs::read(&path).map_err(|e| {
                    format!(
                        "MiniLM weights {}: {e} (run scripts/fetch_minilm.sh or set ARCHSWEEP_MINILM)",
                        path.display()
                    )
                })?;
                let model = MiniLm::load(&bytes)?;
                let (sents, _) = sentences()?;
                Ok(Arc::new(SwitchStudy::new(&model, &sents, sents.len() / 2)))
            })
            .clone()
            .map_err(ModelError::Failed)
    }
}

impl Default for PrecisionSwitch {
    fn default() -> Self {
        Self::new()
    }
}

impl Model for PrecisionSwitch {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn evaluate(&self, p: &[Value], _ctx: &EvalContext) -> Result<Vec<f64>, ModelError> {
        let d = Decoder::ALL
            .into_iter()
            .find(|d| d.name == cat(p, 2))
            .ok_or_else(|| infeasible(format!("decoder {}", cat(p, 2))))?;
        let study = self.study()?;
        let o = study.evaluate(Rule::Policy {
            threshold: num(p, 0),
            beta: num(p, 1),
        });
        let lat = TokenLatency::new(&d, num(p, 3) as usize);
        let t = lat.token_us(o.int4_fraction);
        Ok(vec![
            o.int4_fraction,
            o.avg_bits,
            o.mean_cos,
            o.mean_kl,
            t,
            lat.token_us(0.0) / t,
        ])
    }
}

/// Both models.
pub fn all() -> Vec<Arc<dyn Model>> {
    vec![
        Arc::new(LowbitGemv::new()),
        Arc::new(PrecisionSwitch::new()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(m: &dyn Model, pairs: &[(&str, Value)]) -> Result<Vec<f64>, ModelError> {
        let info = m.info();
        let mut p: Vec<Value> = info.params.iter().map(|s| s.default.clone()).collect();
        for (name, v) in pairs {
            p[info.param_index(name).unwrap()] = v.clone();
        }
        m.evaluate(&p, &EvalContext { seed: 0 })
    }
    fn c(s: &str) -> Value {
        Value::Cat(s.into())
    }

    #[test]
    fn gemv_model_reports_measurements_bytes_and_accuracy() {
        let m = LowbitGemv::new();
        let km = KernelModel::committed();
        // A measured point: the selected tiling's time and the peer of the same run.
        let r = eval(
            &m,
            &[
                ("format", c("lut2")),
                ("k", Value::Int(8192)),
                ("n", Value::Int(28672)),
            ],
        )
        .unwrap();
        let t = km.ours_us(Format::Lut2, 8192, 28672, 1);
        assert!(t.measured && r[0] == t.us && r[6] == 1.0);
        assert!((r[1] - km.cublas_us(8192, 28672, 1).us / t.us).abs() < 1e-12);
        assert!(
            (r[3] - (2.0 + 16.0 * 4.0 / 8192.0)).abs() < 1e-9,
            "{}",
            r[3]
        );
        // Accuracy from the committed table: clustered beats uniform at 3 bits per channel.
        let cl = eval(&m, &[("format", c("lut3"))]).unwrap();
        let un = eval(&m, &[("format", c("lut3")), ("quantizer", c("uniform"))]).unwrap();
        assert!(cl[5] > un[5] && cl[0] == un[0]);
        // Groups cost bytes and are modelled.
        let g32 = eval(&m, &[("format", c("lut3")), ("group", c("32"))]).unwrap();
        assert!(g32[3] > cl[3] + 3.9 && g32[6] == 0.0, "{g32:?}");
        // INT8 keeps the accuracy; group/smoothing on INT formats is refused with the reason.
        let i8 = eval(&m, &[("format", c("int8"))]).unwrap();
        assert!(i8[5] > 0.999 && i8[5] < 1.0);
        // quantizer, group and smoothing do not apply to the INT and fp16 formats.
        let g = eval(&m, &[("format", c("int8")), ("group", c("128"))]).unwrap();
        assert_eq!(g, i8);
        let e = eval(&m, &[("k", Value::Int(100))]).unwrap_err();
        assert!(e.to_string().contains("multiples of 64"), "{e}");
    }
}
