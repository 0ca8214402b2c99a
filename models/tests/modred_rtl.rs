//! Generated reducers through the EDA tools: `verilator --lint-only -Wall`, a Yosys structural
//! check (no loops, no latches), and the self-checking testbench (golden vectors, exact latency
//! and initiation interval) in Icarus Verilog and in Verilator. Under CI (`CI=true`) a missing
//! tool fails the test; elsewhere the test says it was skipped.

use std::path::PathBuf;

use models::modred::rtl::{design, testbench, vectors, RomStyle};
use sim::modred::{Arch, Arity, DesignSpec, Modulus, Plan};

fn tools_present() -> bool {
    rtl::tools::required_for_tests(&["iverilog", "vvp", "verilator", "yosys"])
}

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("archsweep-rtl-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Exports `spec`, then lints, checks, and simulates it in both simulators.
fn verify(
    name: &str,
    modulus: &str,
    spec: DesignSpec,
    style: RomStyle,
    random: usize,
    verilator_sim: bool,
) {
    if !tools_present() {
        return;
    }
    let m = Modulus::parse(modulus).unwrap();
    let plan = Plan::new(&m, &spec).unwrap();
    let dir = workdir(name);
    design(&plan, "modred", style).write(&dir).unwrap();
    let (xs, ys) = vectors(&plan, random, 0x5eed ^ spec.input_bits);
    testbench(&plan, "modred", &xs, &ys).write(&dir).unwrap();
    let fail = |what: &str, e: rtl::tools::ToolError| panic!("{name}: {what}: {e}");
    rtl::tools::verilator_lint(&dir, &["modred.v"], "modred").unwrap_or_else(|e| fail("lint", e));
    rtl::tools::yosys_check(&dir, "modred.v", "modred").unwrap_or_else(|e| fail("yosys check", e));
    let out = rtl::tools::icarus_sim(&dir, &["tb.v", "modred.v"], "tb")
        .unwrap_or_else(|e| fail("icarus", e));
    assert!(out.contains(&format!("PASS {} vectors", xs.len())), "{out}");
    if verilator_sim {
        let out = rtl::tools::verilator_sim(&dir, &["tb.v", "modred.v"], "tb")
            .unwrap_or_else(|e| fail("verilator", e));
        assert!(out.contains(&format!("PASS {} vectors", xs.len())), "{out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn conventional_128() {
    verify(
        "lut128",
        "random:128",
        DesignSpec::lut(256, 6),
        RomStyle::Case,
        300,
        true,
    );
}

#[test]
fn conventional_128_ntt_csa_two_levels_per_register() {
    let spec = DesignSpec {
        arity: Arity::Csa,
        regs_every: 2,
        ..DesignSpec::lut(256, 5)
    };
    verify("lut128csa", "ntt:128", spec, RomStyle::Memh, 300, true);
}

#[test]
fn iterative_128() {
    let spec = DesignSpec {
        arch: Arch::Iter,
        cycles: 5,
        k_iter: 7,
        ..DesignSpec::lut(256, 6)
    };
    verify("iter128", "random:128", spec, RomStyle::Memh, 300, true);
}

#[test]
fn hybrid_128_early_fusion_csa() {
    let spec = DesignSpec {
        arch: Arch::Hybrid,
        cycles: 6,
        lut_share: 0.4,
        fusion: 2,
        arity: Arity::Csa,
        ..DesignSpec::lut(256, 6)
    };
    verify("hyb128", "random:128", spec, RomStyle::Case, 300, true);
}

#[test]
fn hybrid_256_late_fusion_ternary() {
    let spec = DesignSpec {
        arch: Arch::Hybrid,
        cycles: 8,
        k: 4,
        k_iter: 8,
        lut_share: 0.5,
        fusion: 99,
        arity: Arity::Ternary,
        ..DesignSpec::lut(512, 6)
    };
    verify("hyb256", "ntt:256", spec, RomStyle::Memh, 200, true);
}

#[test]
fn iterative_single_cycle_odd_modulus() {
    // Any odd modulus (here not prime), one iteration per result, a narrow input.
    let spec = DesignSpec {
        arch: Arch::Iter,
        cycles: 1,
        k_iter: 5,
        ..DesignSpec::lut(100, 6)
    };
    verify("iter1", "0xd3a94f0b2c61e7", spec, RomStyle::Case, 300, true);
}

#[test]
fn hybrid_1024() {
    let spec = DesignSpec {
        arch: Arch::Hybrid,
        cycles: 16,
        k_iter: 8,
        lut_share: 0.25,
        fusion: 4,
        ..DesignSpec::lut(2048, 6)
    };
    verify("hyb1024", "random:1024", spec, RomStyle::Memh, 100, true);
}
