//! `archsweep lowbit ...`: accuracy of weight quantizers on all-MiniLM-L6-v2 (real weights,
//! real sentences).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use models::lowbit::minilm::{sentences, weights_path, MiniLm};
use models::lowbit::{accuracy, markdown, study_cases};

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
    },
}

/// Runs a lowbit command.
pub fn run(cmd: LowbitCmd) -> Result<ExitCode> {
    match cmd {
        LowbitCmd::Accuracy { weights, out } => {
            let path = weights.unwrap_or_else(weights_path);
            let bytes = std::fs::read(&path).with_context(|| {
                format!(
                    "reading {} (scripts/fetch_minilm.sh fetches the weights)",
                    path.display()
                )
            })?;
            let model = MiniLm::load(&bytes).map_err(anyhow::Error::msg)?;
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
        }
    }
    Ok(ExitCode::SUCCESS)
}
