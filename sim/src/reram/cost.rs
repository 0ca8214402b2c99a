//! Cost roll-up: component inventories into power and area, and operation activity into
//! latency and energy, from a [`Technology`].
//!
//! Energy per operation follows from a component's power over the time the operation holds it:
//! a crossbar read holds the array for one read cycle, an ADC conversion lasts `(bits + 2)` SAR
//! cycles, a row drive holds a DAC for one read cycle, an INV solve holds its op-amps and arrays
//! for the settling time, a programmed cell costs its write-verify pulses.

use super::inv::InvConfig;
use super::tech::{Technology, UnitTech};
use super::xbar::{VmmActivity, VmmConfig};

/// A list of components with counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    /// (name, count, per-unit power and area).
    pub items: Vec<(String, f64, UnitTech)>,
}

impl Inventory {
    /// Adds `count` units.
    pub fn add(&mut self, name: &str, count: f64, unit: UnitTech) {
        self.items.push((name.to_string(), count, unit));
    }

    /// Adds every item of `other`, `times` over.
    pub fn add_all(&mut self, other: &Inventory, times: f64) {
        for (n, c, u) in &other.items {
            self.items.push((n.clone(), c * times, *u));
        }
    }

    /// Total power, mW.
    pub fn power_mw(&self) -> f64 {
        self.items.iter().map(|(_, c, u)| c * u.power_mw).sum()
    }

    /// Total area, mm².
    pub fn area_mm2(&self) -> f64 {
        self.items
            .iter()
            .map(|(_, c, u)| c * u.area_um2)
            .sum::<f64>()
            * 1e-6
    }
}

/// One ISAAC in-situ multiply-accumulate unit (IMA) with `adc_bits` ADCs.
pub fn isaac_ima(t: &Technology, adc_bits: u32) -> Inventory {
    let o = &t.organization;
    let x = &t.crossbar;
    let rows = (o.crossbars_per_ima * x.rows) as f64;
    let mut inv = Inventory::default();
    inv.add(
        "adc",
        o.adcs_per_ima as f64,
        UnitTech {
            power_mw: t.adc_power_mw(adc_bits),
            area_um2: t.adc_area_um2(adc_bits),
        },
    );
    inv.add(
        "dac",
        rows,
        UnitTech {
            power_mw: t.dac.power_mw,
            area_um2: t.dac.area_um2,
        },
    );
    inv.add("sample_hold", rows, t.sample_hold);
    inv.add(
        "crossbar",
        o.crossbars_per_ima as f64,
        UnitTech {
            power_mw: x.power_mw,
            area_um2: x.area_um2,
        },
    );
    inv.add("shift_add", o.shift_adds_per_ima as f64, t.shift_add);
    inv.add("input_reg", 1.0, t.input_reg);
    inv.add("output_reg", 1.0, t.output_reg);
    inv
}

/// Tile-level components outside the IMAs (buffer, bus, router share, digital units).
pub fn tile_overhead(t: &Technology) -> Inventory {
    let mut inv = Inventory::default();
    inv.add(
        "edram",
        1.0,
        UnitTech {
            power_mw: t.edram.power_mw,
            area_um2: t.edram.area_um2,
        },
    );
    inv.add("bus", 1.0, t.bus);
    inv.add(
        "router",
        1.0 / t.router.shared_by,
        UnitTech {
            power_mw: t.router.power_mw,
            area_um2: t.router.area_um2,
        },
    );
    inv.add("tile_digital", 1.0, t.tile_digital);
    inv
}

/// One ISAAC tile: its IMAs and the tile-level components, with the reference ADC.
pub fn isaac_tile(t: &Technology) -> Inventory {
    let mut inv = tile_overhead(t);
    inv.add_all(
        &isaac_ima(t, t.adc.bits),
        t.organization.imas_per_tile as f64,
    );
    inv
}

/// The ISAAC chip: its tiles and the chip I/O.
pub fn isaac_chip(t: &Technology) -> Inventory {
    let mut inv = Inventory::default();
    inv.add_all(&isaac_tile(t), t.organization.tiles as f64);
    inv.add("chip_io", 1.0, t.chip_io);
    inv
}

/// Peak throughput of the ISAAC chip, GOP/s (a multiply-add counts 2): every crossbar holds
/// `rows × cols / slices` weights and finishes one VMM every `input_bits / dac_bits` read cycles.
pub fn isaac_peak_gops(t: &Technology, weight_bits: u32, input_bits: u32) -> f64 {
    let x = &t.crossbar;
    let o = &t.organization;
    let slices = weight_bits.div_ceil(x.cell_bits) as f64;
    let weights = (x.rows * x.cols) as f64 / slices;
    let vmm_ns = f64::from(input_bits.div_ceil(t.dac.bits)) * x.read_ns;
    let crossbars = (o.crossbars_per_ima * o.imas_per_tile * o.tiles) as f64;
    crossbars * 2.0 * weights / vmm_ns
}

/// Energy of one VMM, pJ.
pub fn vmm_energy_pj(t: &Technology, cfg: &VmmConfig, a: &VmmActivity) -> f64 {
    a.crossbar_reads * t.crossbar_read_pj(cfg.rows, cfg.cols)
        + a.dac_drives * t.dac_drive_pj(cfg.dac_bits)
        + a.conversions
            * (t.adc_conversion_pj(cfg.adc_bits)
                + t.shift_add.power_mw * t.adc_conversion_ns(cfg.adc_bits))
}

/// Latency of one VMM, ns: each read cycle lasts the longer of the array read and the
/// conversions of one crossbar's columns by its ADCs (`adcs_per_crossbar`, pipelined).
pub fn vmm_latency_ns(t: &Technology, cfg: &VmmConfig, a: &VmmActivity) -> f64 {
    let per_xbar = t.organization.adcs_per_ima as f64 / t.organization.crossbars_per_ima as f64;
    let convert = cfg.cols as f64 * t.adc_conversion_ns(cfg.adc_bits) / per_xbar.max(1e-9);
    a.cycles * t.crossbar.read_ns.max(convert)
}

/// One analog INV solve of order `n`: (latency ns, energy pJ). The op-amps (one per row) and
/// both arrays are held for the settling time; `n` inputs are driven and `n` outputs converted.
pub fn inv_solve_cost(t: &Technology, cfg: &InvConfig, n: usize, settle_ns: f64) -> (f64, f64) {
    let per_xbar = t.organization.adcs_per_ima as f64 / t.organization.crossbars_per_ima as f64;
    let tiles = n.div_ceil(cfg.size);
    let adcs = (tiles as f64 * per_xbar).max(1.0);
    let convert_ns = n as f64 * t.adc_conversion_ns(cfg.adc_bits) / adcs;
    let arrays = cfg.crossbars_for(n) as f64;
    let array_mw = t.crossbar.power_mw * (cfg.size * cfg.size) as f64
        / (t.crossbar.rows * t.crossbar.cols) as f64;
    let energy = settle_ns * (n as f64 * t.opamp.power_mw + arrays * array_mw)
        + n as f64 * t.dac_drive_pj(cfg.dac_bits) * (settle_ns / t.crossbar.read_ns)
        + n as f64 * t.adc_conversion_pj(cfg.adc_bits);
    (settle_ns + convert_ns, energy)
}

/// Programming `rows` rows of `cells_per_row` cells each, rows sequential within an array and
/// `parallel_arrays` arrays at once: (latency ns, energy pJ).
pub fn program_cost(
    t: &Technology,
    rows: usize,
    cells_per_row: usize,
    parallel_arrays: usize,
) -> (f64, f64) {
    let rows_seq = rows.div_ceil(parallel_arrays.max(1));
    (
        rows_seq as f64 * t.program_row_ns(),
        (rows * cells_per_row) as f64 * t.program_cell_pj(),
    )
}

/// Area of one VMM crossbar with its share of peripherals, mm²: the array, one DAC and
/// sample-and-hold per row, `adcs_per_ima / crossbars_per_ima` ADCs, shift-and-add units and
/// registers by the same ratio.
pub fn vmm_crossbar_area_mm2(t: &Technology, cfg: &VmmConfig) -> f64 {
    let o = &t.organization;
    let per = 1.0 / o.crossbars_per_ima as f64;
    let um2 = t.crossbar_area_um2(cfg.rows, cfg.cols)
        + cfg.rows as f64 * (t.dac_area_um2(cfg.dac_bits) + t.sample_hold.area_um2)
        + o.adcs_per_ima as f64 * per * t.adc_area_um2(cfg.adc_bits)
        + per
            * (o.shift_adds_per_ima as f64 * t.shift_add.area_um2
                + t.input_reg.area_um2
                + t.output_reg.area_um2);
    um2 * 1e-6
}

/// Area of one INV unit of size `cfg.size` (two arrays, op-amps per row, DACs and an ADC), mm².
pub fn inv_unit_area_mm2(t: &Technology, cfg: &InvConfig) -> f64 {
    let o = &t.organization;
    let per_xbar = o.adcs_per_ima as f64 / o.crossbars_per_ima as f64;
    let um2 = 2.0 * t.crossbar_area_um2(cfg.size, cfg.size)
        + cfg.size as f64 * (t.opamp.area_um2 + t.dac_area_um2(cfg.dac_bits))
        + per_xbar * t.adc_area_um2(cfg.adc_bits);
    um2 * 1e-6
}
