//! `archsweep lowbit ...`: accuracy of weight quantizers on all-MiniLM-L6-v2 (real weights,
//! real sentences).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use models::lowbit::latency::KernelModel;
use models::lowbit::minilm::{sentences, weights_path, MiniLm};
use models::lowbit::switch::{self, Decoder, Rule, SwitchStudy, TokenLatency};
use models::lowbit::{accuracy, markdown, study_cases, to_csv};

use crate::ring::{command_line, write_new};

/// Low-bit weight commands.
#[derive(Subcommand)]
pub enum LowbitCmd {
    /// Every quantizer and bit width on MiniLM: sentence-embedding cosine similarity and
    /// per-layer output error against fp32 (calibration on the first 32 sentences of
    /// models/data/sentences.txt, evaluation on the other 32); a markdown table.
    Accuracy {
        /// model.safetensors of all-MiniLM-L6-v2 (default: $ARCHSWEEP_MINILM or
        /// target/minilm/model.safetensors, fetched by scripts/fetch_minilm.sh).
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Markdown file to write (never overwritten).
        #[arg(long)]
        out: Option<PathBuf>,
        /// CSV file to write (never overwritten; the design model gemv.lowbit embeds
        /// results/lowbit/accuracy.csv).
        #[arg(long)]
        csv: Option<PathBuf>,
    },
    /// Dynamic INT8/INT4 switching per encoder layer and token on MiniLM (models::lowbit::switch):
    /// the per-layer KL calibration, then the trade-off curve of the policy (static per-layer
    /// mix and with the attention-entropy signal) against a random switch of the same INT4
    /// share, with the token latency of a decoder simulated from the measured H100 kernels.
    Switch {
        /// model.safetensors of all-MiniLM-L6-v2 (default as for `accuracy`).
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Decoder whose token latency is simulated.
        #[arg(long, default_value = "llama-7b", value_parser = ["llama-7b", "llama-70b"])]
        decoder: String,
        /// Cached tokens of the decode attention.
        #[arg(long, default_value_t = 1024)]
        context: usize,
        /// Markdown file to write (never overwritten).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn load(weights: Option<PathBuf>) -> Result<MiniLm> {
    let path = weights.unwrap_or_else(weights_path);
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "reading {} (scripts/fetch_minilm.sh fetches the weights)",
            path.display()
        )
    })?;
    MiniLm::load(&bytes).map_err(anyhow::Error::msg)
}

/// Refuses outputs that exist before any work starts: results are never overwritten.
fn refuse_existing<'a>(mut paths: impl Iterator<Item = &'a PathBuf>) -> Result<()> {
    if let Some(p) = paths.find(|p| p.exists()) {
        anyhow::bail!(
            "{} exists; results are never overwritten (choose another path)",
            p.display()
        );
    }
    Ok(())
}

/// Runs a lowbit command.
pub fn run(cmd: LowbitCmd) -> Result<ExitCode> {
    match cmd {
        LowbitCmd::Accuracy { weights, out, csv } => {
            refuse_existing(out.iter().chain(&csv))?;
            let model = load(weights)?;
            let (sents, _) = sentences().map_err(anyhow::Error::msg)?;
            let (calib, eval) = sents.split_at(sents.len() / 2);
            let rows = accuracy(&model, calib, eval, &study_cases());
            let md = format!(
                "all-MiniLM-L6-v2, weights of its 36 linear layers quantized; {} evaluation sentences ({} for calibration). mean/min cos: cosine similarity of the sentence embeddings with the fp32 model's; layer N err: mean norm-relative error of encoder layer N's output. Bits per weight count fp16 scales, zeros and centroid tables.\n\n{}",
                eval.len(),
                calib.len(),
                markdown(&rows)
            );
            print!("{md}");
            if let Some(out) = out {
                write_new(&out, &format!("{md}\nProduced by `{}`.\n", command_line()))?;
            }
            if let Some(csv) = csv {
                write_new(&csv, &to_csv(&rows))?;
            }
        }
        LowbitCmd::Switch {
            weights,
            decoder,
            context,
            out,
        } => {
            let d = Decoder::ALL
                .into_iter()
                .find(|d| d.name == decoder)
                .context("decoder")?;
            if context == 0 {
                anyhow::bail!("--context 0: give the number of cached tokens (at least 1)");
            }
            refuse_existing(out.iter())?;
            let model = load(weights)?;
            let (sents, _) = sentences().map_err(anyhow::Error::msg)?;
            let t0 = std::time::Instant::now();
            let study = SwitchStudy::new(&model, &sents, sents.len() / 2);
            let c = &study.calibration;
            let mut md = format!(
                "Precision switching on all-MiniLM-L6-v2 (INT8 per channel, INT4 nested in its high nibbles), {} calibration and {} evaluation sentences; search distribution: softmax of {} x cosine over the other {} sentences' fp32 embeddings.\n\n## Calibration\n\n| layer | KL all-INT8 vs this layer INT4 (nats) | KL / median | layer output error INT4 vs INT8 | mean attention entropy |\n|---|---:|---:|---:|---:|\n",
                sents.len() / 2,
                sents.len() - sents.len() / 2,
                switch::SCALE,
                sents.len() - 1
            );
            let med = study.median_kl;
            for l in 0..c.kl.len() {
                md += &format!(
                    "| {} | {:.3e} | {:.3} | {:.4} | {:.3} |\n",
                    l + 1,
                    c.kl[l],
                    c.kl[l] / med,
                    c.layer_err[l],
                    c.mean_entropy[l]
                );
            }
            // The static policy changes only at the layers' KL ratios; the entropy-weighted
            // ones on a geometric grid around them.
            let mut thresholds: Vec<f64> = study.static_thresholds();
            thresholds.insert(0, 0.0);
            let grid: Vec<f64> = (0..=12).map(|i| 0.5 * 1.25f64.powi(i)).collect();
            let mut rows: Vec<_> = [Rule::Int8, Rule::Int4]
                .into_iter()
                .map(|r| (r, study.evaluate(r)))
                .collect();
            rows.extend(switch::curve(&study, &thresholds, &[0.0]));
            rows.extend(switch::curve(&study, &grid, &[-2.0, -1.0, 1.0]));
            let lat = TokenLatency::new(&d, context);
            md += &format!(
                "\n## Trade-off curve\n\nToken latency: {} at batch 1, {} cached tokens: per layer {:.1} us of linear layers in INT8, {:.1} us in INT4 ({} kernel times), {:.1} us of decode attention (calibrated fp16 split-KV model); {} layers. Norms and element-wise operations are not counted.\n\n{}",
                d.name,
                context,
                lat.layer_int8_us,
                lat.layer_int4_us,
                if lat.measured { "measured" } else { "measured and modelled" },
                lat.attention_us,
                lat.layers,
                switch::markdown(&rows, &lat, &d)
            );
            md += &format!(
                "\n## Bits needed for an accuracy\n\n{}",
                switch::bits_at_targets(&rows, &[0.999, 0.995, 0.99, 0.98, 0.95])
            );
            md += &format!(
                "\nDevice of the kernel times: {}. {:.0} s on this machine.\n",
                KernelModel::committed().device,
                t0.elapsed().as_secs_f64()
            );
            print!("{md}");
            if let Some(out) = out {
                write_new(&out, &format!("{md}\nProduced by `{}`.\n", command_line()))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
