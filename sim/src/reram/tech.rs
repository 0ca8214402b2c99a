//! Technology files: per-component latency, power and area at one process node, read from TOML.
//!
//! The embedded default ([`Technology::isaac32`], `isaac32.toml`) takes every value it can from
//! ISAAC's Table I (Shafiee et al., ISCA 2016, 32 nm), the cell from NeuroSim V1.4, and marks
//! the rest as assumptions; each value's source is written beside it in the file.

use serde::{Deserialize, Serialize};

use super::ReramError;

/// The default technology file (ISAAC at 32 nm), as text.
pub const ISAAC32_TOML: &str = include_str!("isaac32.toml");

/// One ReRAM cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellTech {
    /// Low-resistance state, ohm.
    pub r_on_ohm: f64,
    /// High-resistance state, ohm.
    pub r_off_ohm: f64,
    /// Read voltage, V.
    pub read_voltage_v: f64,
    /// One programming pulse, ns.
    pub write_pulse_ns: f64,
    /// One verify read, ns.
    pub verify_read_ns: f64,
    /// Write-verify iterations per programmed level (average).
    pub write_verify_iterations: f64,
    /// Energy per programming pulse and cell, pJ.
    pub write_energy_pj: f64,
}

/// The reference crossbar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossbarTech {
    /// Rows (word lines).
    pub rows: usize,
    /// Columns (bit lines).
    pub cols: usize,
    /// Bits per cell of the reference design.
    pub cell_bits: u32,
    /// Read power of one array, mW (scaled by cells for other sizes).
    pub power_mw: f64,
    /// Area of one array, µm² (scaled by cells).
    pub area_um2: f64,
    /// One read cycle, ns.
    pub read_ns: f64,
}

/// The reference ADC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdcTech {
    /// Resolution of the reference design.
    pub bits: u32,
    /// Sample rate, GS/s.
    pub rate_gsps: f64,
    /// Power of one ADC, mW.
    pub power_mw: f64,
    /// Area of one ADC, µm².
    pub area_um2: f64,
}

/// The reference DAC (one per row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DacTech {
    /// Resolution of the reference design.
    pub bits: u32,
    /// Power of one DAC, mW.
    pub power_mw: f64,
    /// Area of one DAC, µm².
    pub area_um2: f64,
}

/// A component given by power and area per unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitTech {
    /// Power of one unit, mW.
    pub power_mw: f64,
    /// Area of one unit, µm².
    pub area_um2: f64,
}

/// A buffer (eDRAM).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferTech {
    /// Capacity, KB.
    pub kbytes: f64,
    /// Power, mW.
    pub power_mw: f64,
    /// Area, µm².
    pub area_um2: f64,
    /// Bandwidth, bytes per ns.
    pub bytes_per_ns: f64,
}

/// The on-chip network router.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterTech {
    /// Power, mW.
    pub power_mw: f64,
    /// Area, µm².
    pub area_um2: f64,
    /// Tiles sharing one router.
    pub shared_by: f64,
    /// Link bandwidth, bytes per ns.
    pub bytes_per_ns: f64,
}

/// How components are grouped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organization {
    /// Crossbars per in-situ multiply-accumulate unit (IMA).
    pub crossbars_per_ima: usize,
    /// ADCs per IMA.
    pub adcs_per_ima: usize,
    /// Shift-and-add units per IMA.
    pub shift_adds_per_ima: usize,
    /// IMAs per tile.
    pub imas_per_tile: usize,
    /// Tiles per chip.
    pub tiles: usize,
}

/// The analog-inversion feedback amplifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpampTech {
    /// Gain-bandwidth product, MHz.
    pub gbw_mhz: f64,
    /// Power, mW.
    pub power_mw: f64,
    /// Area, µm².
    pub area_um2: f64,
}

/// Digital arithmetic outside the arrays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigitalTech {
    /// Energy of one multiply-add, pJ.
    pub mac_pj: f64,
    /// Multiply-adds per ns per tile.
    pub macs_per_ns: f64,
}

/// A technology: every component's cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Technology {
    /// Name (reports quote it).
    pub name: String,
    /// Process node, nm.
    pub node_nm: f64,
    /// The cell.
    pub cell: CellTech,
    /// The reference crossbar.
    pub crossbar: CrossbarTech,
    /// The reference ADC.
    pub adc: AdcTech,
    /// The reference DAC.
    pub dac: DacTech,
    /// Sample-and-hold, one per column.
    pub sample_hold: UnitTech,
    /// Shift-and-add unit.
    pub shift_add: UnitTech,
    /// IMA input register.
    pub input_reg: UnitTech,
    /// IMA output register.
    pub output_reg: UnitTech,
    /// Tile buffer.
    pub edram: BufferTech,
    /// Tile bus.
    pub bus: UnitTech,
    /// Router.
    pub router: RouterTech,
    /// Other tile-level digital logic.
    pub tile_digital: UnitTech,
    /// Grouping.
    pub organization: Organization,
    /// Chip I/O.
    pub chip_io: UnitTech,
    /// INV amplifier.
    pub opamp: OpampTech,
    /// Digital arithmetic.
    pub digital: DigitalTech,
}

impl Technology {
    /// The embedded default: ISAAC at 32 nm.
    pub fn isaac32() -> Self {
        Self::parse(ISAAC32_TOML, "isaac32.toml").expect("the embedded technology file is valid")
    }

    /// Parses and checks a technology file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ReramError> {
        let t: Technology = toml::from_str(text).map_err(|e| ReramError::TechFile {
            file: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        t.check()
            .map_err(|(field, message)| ReramError::TechValue {
                file: origin.to_string(),
                field,
                message,
            })?;
        Ok(t)
    }

    /// Reads a technology file.
    pub fn load(path: &std::path::Path) -> Result<Self, ReramError> {
        let text = std::fs::read_to_string(path).map_err(|e| ReramError::TechFile {
            file: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    fn check(&self) -> Result<(), (String, String)> {
        let pos = |field: &str, v: f64| -> Result<(), (String, String)> {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err((field.into(), format!("must be a positive number, got {v}")))
            }
        };
        let nonneg = |field: &str, v: f64| -> Result<(), (String, String)> {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err((field.into(), format!("must be zero or positive, got {v}")))
            }
        };
        let bits = |field: &str, b: u32, max: u32| -> Result<(), (String, String)> {
            if (1..=max).contains(&b) {
                Ok(())
            } else {
                Err((field.into(), format!("must be 1 to {max} bits, got {b}")))
            }
        };
        let count = |field: &str, n: usize| -> Result<(), (String, String)> {
            if n >= 1 {
                Ok(())
            } else {
                Err((field.into(), "must be at least 1".into()))
            }
        };
        pos("node_nm", self.node_nm)?;
        let c = &self.cell;
        pos("cell.r_on_ohm", c.r_on_ohm)?;
        pos("cell.r_off_ohm", c.r_off_ohm)?;
        if c.r_off_ohm <= c.r_on_ohm {
            return Err((
                "cell.r_off_ohm".into(),
                format!(
                    "must exceed cell.r_on_ohm ({}), got {}",
                    c.r_on_ohm, c.r_off_ohm
                ),
            ));
        }
        pos("cell.read_voltage_v", c.read_voltage_v)?;
        pos("cell.write_pulse_ns", c.write_pulse_ns)?;
        nonneg("cell.verify_read_ns", c.verify_read_ns)?;
        pos("cell.write_verify_iterations", c.write_verify_iterations)?;
        nonneg("cell.write_energy_pj", c.write_energy_pj)?;
        let x = &self.crossbar;
        count("crossbar.rows", x.rows)?;
        count("crossbar.cols", x.cols)?;
        bits("crossbar.cell_bits", x.cell_bits, 8)?;
        nonneg("crossbar.power_mw", x.power_mw)?;
        nonneg("crossbar.area_um2", x.area_um2)?;
        pos("crossbar.read_ns", x.read_ns)?;
        bits("adc.bits", self.adc.bits, 16)?;
        pos("adc.rate_gsps", self.adc.rate_gsps)?;
        nonneg("adc.power_mw", self.adc.power_mw)?;
        nonneg("adc.area_um2", self.adc.area_um2)?;
        bits("dac.bits", self.dac.bits, 8)?;
        nonneg("dac.power_mw", self.dac.power_mw)?;
        nonneg("dac.area_um2", self.dac.area_um2)?;
        for (name, u) in [
            ("sample_hold", self.sample_hold),
            ("shift_add", self.shift_add),
            ("input_reg", self.input_reg),
            ("output_reg", self.output_reg),
            ("bus", self.bus),
            ("tile_digital", self.tile_digital),
            ("chip_io", self.chip_io),
        ] {
            nonneg(&format!("{name}.power_mw"), u.power_mw)?;
            nonneg(&format!("{name}.area_um2"), u.area_um2)?;
        }
        pos("edram.kbytes", self.edram.kbytes)?;
        nonneg("edram.power_mw", self.edram.power_mw)?;
        nonneg("edram.area_um2", self.edram.area_um2)?;
        pos("edram.bytes_per_ns", self.edram.bytes_per_ns)?;
        nonneg("router.power_mw", self.router.power_mw)?;
        nonneg("router.area_um2", self.router.area_um2)?;
        pos("router.shared_by", self.router.shared_by)?;
        pos("router.bytes_per_ns", self.router.bytes_per_ns)?;
        let o = &self.organization;
        count("organization.crossbars_per_ima", o.crossbars_per_ima)?;
        count("organization.adcs_per_ima", o.adcs_per_ima)?;
        count("organization.shift_adds_per_ima", o.shift_adds_per_ima)?;
        count("organization.imas_per_tile", o.imas_per_tile)?;
        count("organization.tiles", o.tiles)?;
        pos("opamp.gbw_mhz", self.opamp.gbw_mhz)?;
        nonneg("opamp.power_mw", self.opamp.power_mw)?;
        nonneg("opamp.area_um2", self.opamp.area_um2)?;
        nonneg("digital.mac_pj", self.digital.mac_pj)?;
        pos("digital.macs_per_ns", self.digital.macs_per_ns)?;
        Ok(())
    }

    /// Cells per crossbar relative to the reference array.
    fn cell_ratio(&self, rows: usize, cols: usize) -> f64 {
        (rows * cols) as f64 / (self.crossbar.rows * self.crossbar.cols) as f64
    }

    /// Energy of one read cycle of a `rows` × `cols` crossbar, pJ (array power scales with cells).
    pub fn crossbar_read_pj(&self, rows: usize, cols: usize) -> f64 {
        self.crossbar.power_mw * self.cell_ratio(rows, cols) * self.crossbar.read_ns
    }

    /// Area of a `rows` × `cols` crossbar, µm².
    pub fn crossbar_area_um2(&self, rows: usize, cols: usize) -> f64 {
        self.crossbar.area_um2 * self.cell_ratio(rows, cols)
    }

    /// Energy of one conversion of a `bits`-bit ADC, pJ: the reference energy per conversion
    /// scaled by 2^(bits − reference bits) (constant Walden figure of merit).
    pub fn adc_conversion_pj(&self, bits: u32) -> f64 {
        self.adc.power_mw / self.adc.rate_gsps * 2f64.powi(bits as i32 - self.adc.bits as i32)
    }

    /// Conversion time of a `bits`-bit SAR ADC, ns: (bits + 2) cycles (MNSIM 2.0), with the
    /// reference design's rate fixing the cycle.
    pub fn adc_conversion_ns(&self, bits: u32) -> f64 {
        (1.0 / self.adc.rate_gsps) * f64::from(bits + 2) / f64::from(self.adc.bits + 2)
    }

    /// Power of one `bits`-bit ADC, mW (at its own rate).
    pub fn adc_power_mw(&self, bits: u32) -> f64 {
        self.adc_conversion_pj(bits) / self.adc_conversion_ns(bits)
    }

    /// Area of one `bits`-bit ADC, µm² (scaled like its energy).
    pub fn adc_area_um2(&self, bits: u32) -> f64 {
        self.adc.area_um2 * 2f64.powi(bits as i32 - self.adc.bits as i32)
    }

    /// Energy of driving one row for one read cycle with a `bits`-bit DAC, pJ (the DAC and the
    /// row's sample-and-hold; multi-bit DACs scale as 2^(bits − reference bits)).
    pub fn dac_drive_pj(&self, bits: u32) -> f64 {
        self.dac.power_mw * 2f64.powi(bits as i32 - self.dac.bits as i32) * self.crossbar.read_ns
    }

    /// Area of one `bits`-bit DAC, µm².
    pub fn dac_area_um2(&self, bits: u32) -> f64 {
        self.dac.area_um2 * 2f64.powi(bits as i32 - self.dac.bits as i32)
    }

    /// Latency to program one row of cells by write-verify, ns (all cells of a row in parallel).
    pub fn program_row_ns(&self) -> f64 {
        self.cell.write_verify_iterations * (self.cell.write_pulse_ns + self.cell.verify_read_ns)
    }

    /// Energy to program one cell by write-verify, pJ.
    pub fn program_cell_pj(&self) -> f64 {
        self.cell.write_verify_iterations * self.cell.write_energy_pj
    }

    /// Energy of moving one byte through the tile buffer, pJ (power over bandwidth).
    pub fn edram_byte_pj(&self) -> f64 {
        self.edram.power_mw / self.edram.bytes_per_ns
    }

    /// Energy of moving one byte across one router hop, pJ.
    pub fn router_byte_pj(&self) -> f64 {
        self.router.power_mw / self.router.bytes_per_ns
    }

    /// Off/on conductance ratio of the cell.
    pub fn on_off_ratio(&self) -> f64 {
        self.cell.r_off_ohm / self.cell.r_on_ohm
    }
}
