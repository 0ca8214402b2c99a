//! Drivers for the EDA tools: Icarus Verilog and Verilator (lint and simulation), Yosys
//! (structural checks and synthesis for Xilinx 7-series and iCE40) and nextpnr-ice40 (Fmax).
//!
//! Every driver runs in a given directory (so `$readmemh` files resolve there), returns the
//! tool's output, and turns a missing tool into [`ToolError::Missing`] naming the Debian package.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A failed tool run.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The tool is not installed.
    #[error("`{tool}` is not installed (Debian package `{package}`; scripts/test.sh installs it)")]
    Missing {
        /// Executable.
        tool: String,
        /// Debian package providing it.
        package: String,
    },
    /// The tool ran and failed.
    #[error("`{command}` failed ({status}) in {dir}:\n{output}")]
    Failed {
        /// The command line.
        command: String,
        /// Exit status.
        status: String,
        /// Working directory.
        dir: PathBuf,
        /// The tail of its output.
        output: String,
    },
    /// The tool's results could not be read.
    #[error("cannot read {file}: {message}")]
    Results {
        /// File.
        file: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Files could not be written or read.
    #[error("{0}")]
    Io(String),
}

/// Debian package of each tool.
pub fn package_of(tool: &str) -> &'static str {
    match tool {
        "iverilog" | "vvp" => "iverilog",
        "verilator" => "verilator",
        "yosys" => "yosys",
        "nextpnr-ice40" => "nextpnr-ice40",
        _ => "?",
    }
}

/// Whether `tool` is on the PATH.
pub fn available(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

/// For tests that need the EDA tools: `true` when all of `tools` are installed. Otherwise, under
/// CI (`CI=true` or `1`) it panics, since such tests must never skip there; elsewhere it prints
/// "skipped: ..." and returns `false`.
pub fn required_for_tests(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !available(t)).collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("EDA tools missing under CI: {missing:?} (scripts/test.sh installs them)");
    }
    eprintln!("skipped: EDA tools not installed: {missing:?}");
    false
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// Runs `tool args...` in `dir`; returns stdout and stderr together.
pub fn run(tool: &str, args: &[&str], dir: &Path) -> Result<String, ToolError> {
    if !available(tool) && !Path::new(tool).is_file() {
        return Err(ToolError::Missing {
            tool: tool.into(),
            package: package_of(tool).into(),
        });
    }
    let out = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| ToolError::Io(format!("running {tool}: {e}")))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(ToolError::Failed {
            command: format!("{tool} {}", args.join(" ")),
            status: out.status.to_string(),
            dir: dir.to_path_buf(),
            output: tail(&text, 40),
        });
    }
    Ok(text)
}

/// `verilator --lint-only -Wall` on `files` with top module `top`.
pub fn verilator_lint(dir: &Path, files: &[&str], top: &str) -> Result<String, ToolError> {
    let mut args = vec!["--lint-only", "-Wall", "--top-module", top];
    args.extend(files);
    run("verilator", &args, dir)
}

/// Icarus Verilog: compile (`-g2012 -Wall`) and run a testbench; the run must print `PASS`.
pub fn icarus_sim(dir: &Path, files: &[&str], top: &str) -> Result<String, ToolError> {
    let mut args = vec!["-g2012", "-Wall", "-o", "tb.vvp", "-s", top];
    args.extend(files);
    run("iverilog", &args, dir)?;
    let out = run("vvp", &["-n", "tb.vvp"], dir)?;
    require_pass("vvp -n tb.vvp", &out, dir)
}

/// Verilator: build a testbench into a binary (`--binary`) and run it; it must print `PASS`.
pub fn verilator_sim(dir: &Path, files: &[&str], top: &str) -> Result<String, ToolError> {
    let mut args = vec![
        "--binary",
        "-j",
        "0",
        "-Wno-fatal",
        "--top-module",
        top,
        "-Mdir",
        "obj_dir",
        "-o",
        "sim",
    ];
    args.extend(files);
    run("verilator", &args, dir)?;
    let bin = dir.join("obj_dir").join("sim");
    let out = run(bin.to_str().unwrap_or("obj_dir/sim"), &[], dir)?;
    require_pass("obj_dir/sim", &out, dir)
}

fn require_pass(cmd: &str, out: &str, dir: &Path) -> Result<String, ToolError> {
    if out.lines().any(|l| l.trim_start().starts_with("PASS")) && !out.contains("FATAL") {
        Ok(out.to_string())
    } else {
        Err(ToolError::Failed {
            command: cmd.into(),
            status: "no PASS line".into(),
            dir: dir.to_path_buf(),
            output: tail(out, 40),
        })
    }
}

/// Yosys structural check: hierarchy, `proc`, `check -assert` (no combinational loops, no
/// multiple drivers, no undriven signals) and no latches.
pub fn yosys_check(dir: &Path, file: &str, top: &str) -> Result<String, ToolError> {
    let script = format!(
        "read_verilog {file}; hierarchy -check -top {top}; proc; opt_clean; check -assert; select -assert-none t:$dlatch t:$sr t:$dlatchsr t:$adlatch"
    );
    run("yosys", &["-q", "-p", &script], dir)
}

/// Cell counts from synthesis.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SynthCounts {
    /// Cells by type, as Yosys reports them.
    pub cells: BTreeMap<String, u64>,
    /// Yosys's estimate of logic cells (Xilinx) where given.
    pub estimated_lcs: Option<u64>,
}

impl SynthCounts {
    /// Sum of the counts of cell types starting with any of `prefixes`.
    pub fn count(&self, prefixes: &[&str]) -> u64 {
        self.cells
            .iter()
            .filter(|(k, _)| prefixes.iter().any(|p| k.starts_with(p)))
            .map(|(_, v)| v)
            .sum()
    }

    /// Xilinx LUTs (LUT1-LUT6).
    pub fn luts(&self) -> u64 {
        self.count(&["LUT"])
    }

    /// Xilinx flip-flops.
    pub fn ffs(&self) -> u64 {
        self.count(&["FD"])
    }

    /// Xilinx CARRY4.
    pub fn carry4(&self) -> u64 {
        self.count(&["CARRY"])
    }

    /// Xilinx block RAMs (RAMB36 count as one, RAMB18 as half, rounded up).
    pub fn bram36(&self) -> u64 {
        let b36 = self.count(&["RAMB36"]);
        let b18 = self.count(&["RAMB18"]);
        b36 + b18.div_ceil(2)
    }

    /// Xilinx DSP slices.
    pub fn dsp(&self) -> u64 {
        self.count(&["DSP48"])
    }
}

/// Reads the counts of a `stat -json` file.
pub fn read_stat(path: &Path) -> Result<SynthCounts, ToolError> {
    let text = std::fs::read_to_string(path).map_err(|e| ToolError::Results {
        file: path.into(),
        message: e.to_string(),
    })?;
    // `tee -o` may prepend Yosys's own log lines; the JSON object starts at the first brace.
    let start = text.find('{').ok_or_else(|| ToolError::Results {
        file: path.into(),
        message: "no JSON object".into(),
    })?;
    let v: serde_json::Value =
        serde_json::from_str(&text[start..]).map_err(|e| ToolError::Results {
            file: path.into(),
            message: e.to_string(),
        })?;
    let design = v.get("design").ok_or_else(|| ToolError::Results {
        file: path.into(),
        message: "no `design` section".into(),
    })?;
    let mut counts = SynthCounts::default();
    if let Some(cells) = design.get("num_cells_by_type").and_then(|c| c.as_object()) {
        for (k, n) in cells {
            counts.cells.insert(k.clone(), n.as_u64().unwrap_or(0));
        }
    }
    counts.estimated_lcs = design.get("estimated_num_lc").and_then(|n| n.as_u64());
    Ok(counts)
}

/// `synth_xilinx` for 7-series (flattened, no DSP inference, no I/O buffers; block RAM
/// inference only when `bram`) and its cell counts.
pub fn yosys_synth_xilinx(
    dir: &Path,
    file: &str,
    top: &str,
    bram: bool,
) -> Result<SynthCounts, ToolError> {
    let nobram = if bram { "" } else { " -nobram" };
    let script = format!(
        "read_verilog {file}; synth_xilinx -top {top} -family xc7 -flatten -nodsp -noiopad -noclkbuf{nobram}; tee -q -o xc7.json stat -json -tech xilinx"
    );
    run("yosys", &["-q", "-p", &script], dir)?;
    read_stat(&dir.join("xc7.json"))
}

/// `synth_ice40` and its cell counts; writes `ice40_netlist.json` for nextpnr.
pub fn yosys_synth_ice40(dir: &Path, file: &str, top: &str) -> Result<SynthCounts, ToolError> {
    let script = format!(
        "read_verilog {file}; synth_ice40 -top {top} -json ice40_netlist.json; tee -q -o ice40.json stat -json"
    );
    run("yosys", &["-q", "-p", &script], dir)?;
    read_stat(&dir.join("ice40.json"))
}

/// Place and route on an iCE40 HX8K and return the achieved Fmax of `clock`, MHz.
pub fn nextpnr_ice40_fmax(dir: &Path) -> Result<f64, ToolError> {
    run(
        "nextpnr-ice40",
        &[
            "--hx8k",
            "--package",
            "ct256",
            "--json",
            "ice40_netlist.json",
            "--pcf-allow-unconstrained",
            "--freq",
            "100",
            "--report",
            "pnr.json",
            "--seed",
            "1",
        ],
        dir,
    )?;
    let path = dir.join("pnr.json");
    let text = std::fs::read_to_string(&path).map_err(|e| ToolError::Results {
        file: path.clone(),
        message: e.to_string(),
    })?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| ToolError::Results {
        file: path.clone(),
        message: e.to_string(),
    })?;
    v.get("fmax")
        .and_then(|f| f.as_object())
        .and_then(|f| {
            f.values()
                .filter_map(|c| c.get("achieved")?.as_f64())
                .reduce(f64::min)
        })
        .ok_or_else(|| ToolError::Results {
            file: path,
            message: "no fmax.*.achieved entry".into(),
        })
}
