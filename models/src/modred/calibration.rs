//! The FPGA cost model's calibration: scale factors fitted to Yosys synthesis results by
//! `archsweep rtl calibrate`, committed in `models/data/modred_calibration.toml`.

use sim::modred::cost::FpgaCoeffs;

const COMMITTED: &str = include_str!("../../data/modred_calibration.toml");

/// Parses a calibration file (`key = value` lines for rom, add, csa, mux, ff).
pub fn parse(text: &str) -> Result<FpgaCoeffs, String> {
    let mut c = FpgaCoeffs::default();
    for (i, line) in text.lines().enumerate() {
        let t = line.split('#').next().unwrap_or("").trim();
        if t.is_empty() || t.starts_with('[') {
            continue;
        }
        let (k, v) = t
            .split_once('=')
            .ok_or_else(|| format!("line {}: expected key = value", i + 1))?;
        let v: f64 = v
            .trim()
            .parse()
            .map_err(|_| format!("line {}: `{}` is not a number", i + 1, v.trim()))?;
        match k.trim() {
            "rom" => c.rom = v,
            "add" => c.add = v,
            "csa" => c.csa = v,
            "mux" => c.mux = v,
            "ff" => c.ff = v,
            other => {
                return Err(format!(
                    "line {}: unknown key `{other}` (rom, add, csa, mux, ff)",
                    i + 1
                ))
            }
        }
    }
    Ok(c)
}

/// The committed calibration.
pub fn committed() -> FpgaCoeffs {
    parse(COMMITTED).unwrap_or_default()
}
