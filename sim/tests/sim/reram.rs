//! ReRAM crossbars, analog inversion, high-precision solves, costs and K-FAC training.

use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sim::reram::arch::{kfac_iteration, pipelayer_iteration, Accel, Mapping, Workload, WORKLOADS};
use sim::reram::cost::{isaac_chip, isaac_tile};
use sim::reram::inv::{
    achieved_bits, settle_ns, spd_with_condition, HpConfig, HpSolver, InvArray, InvConfig, Scheme,
};
use sim::reram::kfac::{epochs_to, train, Dataset, InverseKind, Net, Optimizer, TrainConfig};
use sim::reram::tech::{Technology, ISAAC32_TOML};
use sim::reram::xbar::{gauss, Crossbar, Device, Encoding, VmmConfig};
use sim::reram::ReramError;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn random_matrix(m: usize, n: usize, r: &mut ChaCha8Rng) -> DMatrix<f64> {
    DMatrix::from_fn(m, n, |_, _| gauss(r))
}

/// What an ideal array computes: the quantized weights times the quantized input.
fn ideal_product(xb: &Crossbar, x: &[f64]) -> Vec<f64> {
    let bits = xb.config().input_bits;
    let xmax = x.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let step = xmax / ((1i64 << (bits - 1)) - 1) as f64;
    let xq = DVector::from_iterator(x.len(), x.iter().map(|v| (v / step).round() * step));
    (xb.quantized() * xq).iter().copied().collect()
}

/// Programs `w` with `cfg`, reads `x`, and returns the error against the ideal product.
fn vmm_error(w: &DMatrix<f64>, x: &[f64], cfg: &VmmConfig, r: &mut ChaCha8Rng) -> f64 {
    let xb = Crossbar::program(w, cfg, r).unwrap();
    max_rel_err(&xb.vmm(x, r), &ideal_product(&xb, x))
}

fn max_rel_err(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (u, v)| m.max((u - v).abs()))
        / scale
}

#[test]
fn ideal_vmm_equals_the_quantized_product_for_every_encoding_and_tiling() {
    let mut r = rng(1);
    for encoding in [Encoding::Offset, Encoding::Differential] {
        for (m, n, dac, cell) in [
            (10, 7, 1, 2),
            (33, 300, 2, 2),
            (64, 129, 1, 4),
            (5, 256, 3, 1),
        ] {
            let cfg = VmmConfig {
                encoding,
                dac_bits: dac,
                cell_bits: cell,
                ..VmmConfig::isaac()
            };
            let cfg = VmmConfig {
                adc_bits: cfg.lossless_adc_bits(),
                ..cfg
            };
            let w = random_matrix(m, n, &mut r);
            let xb = Crossbar::program(&w, &cfg, &mut r).unwrap();
            for _ in 0..3 {
                let x: Vec<f64> = (0..n).map(|_| gauss(&mut r)).collect();
                let y = xb.vmm(&x, &mut r);
                let e = max_rel_err(&y, &ideal_product(&xb, &x));
                assert!(
                    e < 1e-12,
                    "{encoding:?} {m}x{n} dac {dac} cell {cell}: {e:e}"
                );
            }
        }
    }
}

#[test]
fn noise_below_half_a_level_vanishes_and_more_noise_does_not() {
    let mut r = rng(2);
    let w = random_matrix(16, 128, &mut r);
    let x: Vec<f64> = (0..128).map(|_| gauss(&mut r)).collect();
    let quiet = VmmConfig {
        device: Device::noisy(0.002, 0.001),
        ..VmmConfig::isaac()
    };
    let e = vmm_error(&w, &x, &quiet, &mut r);
    assert!(e < 1e-12, "quiet device: {e:e}");
    let loud = VmmConfig {
        device: Device::noisy(0.05, 0.05),
        ..VmmConfig::isaac()
    };
    let e = vmm_error(&w, &x, &loud, &mut r);
    assert!(e > 1e-4, "loud device should lose precision: {e:e}");
}

#[test]
fn fewer_adc_bits_lose_precision_monotonically() {
    let mut r = rng(3);
    let w = random_matrix(32, 128, &mut r);
    let x: Vec<f64> = (0..128).map(|_| gauss(&mut r)).collect();
    let mut last = 0.0;
    for bits in [9, 8, 7, 6, 5] {
        let cfg = VmmConfig {
            adc_bits: bits,
            ..VmmConfig::isaac()
        };
        assert_eq!(VmmConfig::isaac().lossless_adc_bits(), 9);
        let e = vmm_error(&w, &x, &cfg, &mut r);
        if bits == 9 {
            assert!(e < 1e-12, "lossless: {e:e}");
        } else {
            assert!(e > last, "{bits} bits: {e:e} not above {last:e}");
        }
        last = e;
    }
}

#[test]
fn activity_counts_follow_the_tiling() {
    let cfg = VmmConfig::isaac();
    // 300 inputs: 3 row tiles; 40 outputs x 8 slices = 320 columns: 3 column tiles.
    let a = cfg.vmm_activity(40, 300);
    assert_eq!(cfg.slices(), 8);
    assert_eq!(a.crossbars, 9);
    assert_eq!(a.cycles, 16.0);
    assert_eq!(a.conversions, (3 * 16 * 8 * 40) as f64);
    assert_eq!(a.crossbar_reads, (9 * 16) as f64);
    assert_eq!(a.dac_drives, (3 * 300 * 16) as f64);
    let d = VmmConfig {
        encoding: Encoding::Differential,
        ..cfg
    };
    assert_eq!(d.slices(), 8, "15 magnitude bits in 2-bit cells");
    assert_eq!(d.arrays(), 2);
}

#[test]
fn faults_drift_and_ir_drop_corrupt_the_product() {
    let mut r = rng(4);
    let w = random_matrix(16, 128, &mut r);
    let x: Vec<f64> = (0..128).map(|_| gauss(&mut r)).collect();
    for (name, device) in [
        (
            "stuck cells",
            Device {
                stuck_off: 0.02,
                stuck_on: 0.02,
                ..Device::ideal()
            },
        ),
        (
            "drift",
            Device {
                drift_nu: 0.05,
                drift_time: 1e4,
                ..Device::ideal()
            },
        ),
        (
            "IR drop",
            Device {
                ir_drop: 0.1,
                ..Device::ideal()
            },
        ),
    ] {
        let cfg = VmmConfig {
            device,
            ..VmmConfig::isaac()
        };
        let e = vmm_error(&w, &x, &cfg, &mut r);
        assert!(e > 1e-3, "{name}: {e:e}");
    }
}

#[test]
fn bad_device_and_design_parameters_are_rejected() {
    let mut r = rng(5);
    let w = random_matrix(4, 4, &mut r);
    for (cfg, needle) in [
        (
            VmmConfig {
                device: Device {
                    prog_sigma: -0.1,
                    ..Device::ideal()
                },
                ..VmmConfig::isaac()
            },
            "prog_sigma",
        ),
        (
            VmmConfig {
                device: Device {
                    on_off_ratio: 1.0,
                    ..Device::ideal()
                },
                ..VmmConfig::isaac()
            },
            "on_off_ratio",
        ),
        (
            VmmConfig {
                adc_bits: 0,
                ..VmmConfig::isaac()
            },
            "adc_bits",
        ),
    ] {
        let e = Crossbar::program(&w, &cfg, &mut r).unwrap_err().to_string();
        assert!(e.contains(needle), "{e}");
    }
    let bad = DMatrix::from_element(2, 2, f64::NAN);
    assert!(Crossbar::program(&bad, &VmmConfig::isaac(), &mut r).is_err());
}

#[test]
fn analog_inv_is_the_quantized_solve_to_the_output_resolution() {
    let mut r = rng(6);
    let a = spd_with_condition(32, 10.0, &mut r);
    let cfg = InvConfig::eight_bit();
    let inv = InvArray::program(&a, &cfg, &mut r).unwrap();
    let b: Vec<f64> = (0..32).map(|_| gauss(&mut r)).collect();
    let x = inv.solve(&b, &mut r);
    // The ideal device holds the level-quantized matrix exactly.
    assert!((inv.programmed() - inv.nominal()).amax() < 1e-12);
    let exact = a
        .clone()
        .lu()
        .solve(&DVector::from_column_slice(&b))
        .unwrap();
    let bits = achieved_bits(&x, exact.as_slice());
    assert!((4.0..9.0).contains(&bits), "8-bit INV gave {bits:.2} bits");
    // Against the solve with the matrix it holds and the DAC-quantized input, only the output
    // ADC's rounding remains: at most half a step of a power-of-two range over 2^7.
    let bmax = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let bstep = bmax / 127.0;
    let bq: Vec<f64> = b.iter().map(|v| (v / bstep).round() * bstep).collect();
    let held = inv
        .nominal()
        .clone()
        .lu()
        .solve(&DVector::from_column_slice(&bq))
        .unwrap();
    let fs = 2f64.powi(held.amax().log2().ceil() as i32);
    let err = x
        .iter()
        .zip(held.iter())
        .fold(0.0f64, |m, (u, v)| m.max((u - v).abs()));
    assert!(err <= 0.5 * fs / 128.0 + 1e-12, "{err:e}");
}

#[test]
fn unstable_loops_are_refused_and_stable_nonsymmetric_ones_solved() {
    let mut r = rng(7);
    let neg = -DMatrix::<f64>::identity(4, 4);
    match InvArray::program(&neg, &InvConfig::eight_bit(), &mut r) {
        Err(ReramError::Unstable { min_real }) => assert!(min_real < 0.0),
        other => panic!("expected unstable, got {other:?}"),
    }
    // Eigenvalues 1 ± 2i: positive real parts, so the loop settles.
    let rot = DMatrix::from_row_slice(2, 2, &[1.0, 2.0, -2.0, 1.0]);
    let inv = InvArray::program(&rot, &InvConfig::eight_bit(), &mut r).unwrap();
    assert!((inv.lambda_min_normalised() - 0.5).abs() < 1e-2);
    let x = inv.solve(&[1.0, 0.0], &mut r);
    let exact = [0.2, 0.4];
    assert!(achieved_bits(&x, &exact) > 6.0, "{x:?}");
}

#[test]
fn settling_time_follows_the_closed_form() {
    let t = settle_ns(8, 1e9, 0.5);
    let want = 8.0 * std::f64::consts::LN_2 / (std::f64::consts::TAU * 1e9 * 0.5) * 1e9;
    assert!((t - want).abs() < 1e-12);
    assert!((t - 1.7652).abs() < 1e-3, "{t}");
    // Halving the smallest eigenvalue doubles it.
    assert!((settle_ns(8, 1e9, 0.25) / t - 2.0).abs() < 1e-12);
}

fn rounds_to_bits(kappa: f64, noise: Device, target: f64, seed: u64) -> Option<usize> {
    let mut r = rng(seed);
    let a = spd_with_condition(64, kappa, &mut r);
    let b: Vec<f64> = (0..64).map(|_| gauss(&mut r)).collect();
    let exact = a
        .clone()
        .lu()
        .solve(&DVector::from_column_slice(&b))
        .unwrap();
    let mut cfg = HpConfig::default_refine();
    cfg.inv.device = noise;
    cfg.vmm.device = noise;
    cfg.target_bits = 0.0;
    let s = HpSolver::program(&a, &cfg, &mut r).unwrap();
    let out = s.solve(&b, &mut r);
    out.iterates
        .iter()
        .position(|x| achieved_bits(x, exact.as_slice()) >= target)
        .map(|k| k + 1)
}

#[test]
fn refinement_reaches_16_bits_from_8_bit_inv_on_damped_matrices() {
    // Documented in the README: condition number <= 10 takes at most 5 rounds with the
    // default device noise (programming 0.2%, read 0.1% of the range); 1 takes at most 3.
    for seed in 0..4 {
        let dev = Device::noisy(0.002, 0.001);
        let k1 = rounds_to_bits(1.0, dev, 16.0, seed).expect("kappa 1 reaches 16 bits");
        assert!(k1 <= 3, "kappa 1: {k1} rounds");
        let k10 = rounds_to_bits(10.0, dev, 16.0, seed).expect("kappa 10 reaches 16 bits");
        assert!(k10 <= 5, "kappa 10: {k10} rounds");
        let ideal = rounds_to_bits(10.0, Device::ideal(), 20.0, seed).expect("20 bits ideal");
        assert!(ideal <= 6, "ideal kappa 10 to 20 bits: {ideal} rounds");
    }
}

#[test]
fn the_failure_region_is_reported_not_hidden() {
    let mut r = rng(9);
    // 8-bit levels cannot hold a 64x64 matrix with condition number 1e4: the programmed
    // matrix has negative eigenvalues and the loop is refused.
    let a = spd_with_condition(64, 1e4, &mut r);
    let e = HpSolver::program(&a, &HpConfig::default_refine(), &mut r).unwrap_err();
    assert!(matches!(e, ReramError::Unstable { .. }), "{e}");
    // Ten times the default noise: refinement cannot get past a few bits.
    assert_eq!(
        rounds_to_bits(10.0, Device::noisy(0.02, 0.01), 12.0, 1),
        None
    );
}

#[test]
fn series_expansion_stops_at_the_inv_converter_precision() {
    let mut r = rng(10);
    let a = spd_with_condition(64, 10.0, &mut r);
    let b: Vec<f64> = (0..64).map(|_| gauss(&mut r)).collect();
    let exact = a
        .clone()
        .lu()
        .solve(&DVector::from_column_slice(&b))
        .unwrap();
    let cfg = HpConfig {
        scheme: Scheme::Expand,
        target_bits: 0.0,
        ..HpConfig::default_refine()
    };
    let s = HpSolver::program(&a, &cfg, &mut r).unwrap();
    let out = s.solve(&b, &mut r);
    let last = achieved_bits(&out.x, exact.as_slice());
    assert!((5.0..9.0).contains(&last), "expansion: {last:.2} bits");
}

#[test]
fn achieved_bits_measures_relative_max_error() {
    assert!((achieved_bits(&[1.0, 2.0 + 2f64.powi(-9)], &[1.0, 2.0]) - 10.0).abs() < 1e-9);
    assert_eq!(achieved_bits(&[1.0], &[1.0]), 52.0);
    assert_eq!(achieved_bits(&[5.0], &[1.0]), 0.0);
}

#[test]
fn the_cost_model_reproduces_isaac_table_one() {
    // ISAAC (Shafiee et al., ISCA 2016), Table I: a tile is 330 mW and 0.372 mm^2; 168 tiles
    // plus HyperTransport make 65.8 W and 85.4 mm^2. The roll-up counts 12 IMAs of 8 ADCs,
    // 8x128 DACs and sample-and-holds, 8 arrays, 4 shift-and-adds and registers, plus the
    // tile's eDRAM, bus, a quarter router and digital units.
    let t = Technology::isaac32();
    let tile = isaac_tile(&t);
    let chip = isaac_chip(&t);
    for (got, want) in [
        (tile.power_mw(), 330.0),
        (tile.area_mm2(), 0.372),
        (chip.power_mw() / 1e3, 65.8),
        (chip.area_mm2(), 85.4),
    ] {
        assert!((got / want - 1.0).abs() < 0.005, "{got} vs {want}");
    }
}

#[test]
fn technology_files_are_checked_with_field_and_line() {
    for (from, to, needles) in [
        (
            "r_on_ohm = 100e3",
            "r_on_ohm = -100e3",
            &["t.toml", "cell.r_on_ohm", "positive"][..],
        ),
        (
            "bits = 8\nrate_gsps",
            "bits = 0\nrate_gsps",
            &["t.toml", "adc.bits", "1 to 16"],
        ),
        (
            "[adc]",
            "[adc]\nresolution = 8",
            &["t.toml", "resolution", "line"],
        ),
        (
            "r_off_ohm = 1.7e6",
            "r_off_ohm = 50e3",
            &["cell.r_off_ohm", "exceed"],
        ),
    ] {
        assert!(ISAAC32_TOML.contains(from), "{from}");
        let e = Technology::parse(&ISAAC32_TOML.replace(from, to), "t.toml")
            .unwrap_err()
            .to_string();
        for n in needles {
            assert!(e.contains(n), "{to}: `{n}` missing in {e}");
        }
    }
}

#[test]
fn the_digits_parse_and_bad_lines_are_located() {
    let d = Dataset::digits();
    assert_eq!(d.len(), 1797);
    assert_eq!(d.x.ncols(), 64);
    for c in 0..10 {
        let n = d.y.iter().filter(|&&y| y == c).count();
        assert!((170..=190).contains(&n), "class {c}: {n}");
    }
    assert!(d.x.iter().all(|v| (0.0..=1.0).contains(v)));
    let e = Dataset::parse_digits("# h\n1,2\n").unwrap_err().to_string();
    assert!(e.contains("line 2") && e.contains("65 values"), "{e}");
    let row = format!("{},x\n", vec!["0"; 64].join(","));
    let e = Dataset::parse_digits(&row).unwrap_err().to_string();
    assert!(e.contains("line 1") && e.contains("column 65"), "{e}");
    let (tr, te) = d.split(360, 1);
    assert_eq!((tr.len(), te.len()), (1437, 360));
}

fn run(net: Net, optimizer: Optimizer, epochs: usize) -> Vec<sim::reram::kfac::EpochRecord> {
    let (tr, te) = Dataset::digits().split(360, 1);
    train(
        &TrainConfig {
            net,
            optimizer,
            epochs,
            batch: 64,
            seed: 1,
        },
        &tr,
        &te,
    )
    .unwrap()
}

#[test]
fn kfac_with_high_precision_inverses_matches_fp64_and_8_bit_inv_falls_short() {
    let net = Net::Mlp { hidden: 32 };
    let dev = Device::noisy(0.002, 0.001);
    let mut hp = HpConfig::default_refine();
    hp.inv.device = dev;
    hp.vmm.device = dev;
    let exact = run(net, Optimizer::kfac(InverseKind::Exact), 4);
    let high = run(net, Optimizer::kfac(InverseKind::HighPrecision(hp)), 4);
    let low = run(net, Optimizer::kfac(InverseKind::Analog(hp.inv)), 4);
    // Second-order training on the digits: 95% test accuracy within 2 epochs.
    assert!(epochs_to(&exact, 0.95).is_some_and(|e| e <= 2), "{exact:?}");
    for (h, e) in high.iter().zip(&exact) {
        assert!(
            (h.test_acc - e.test_acc).abs() <= 0.01,
            "epoch {}: {} vs {}",
            e.epoch,
            h.test_acc,
            e.test_acc
        );
        assert!(
            h.inv_bits >= 16.0,
            "high-precision inverses: {} bits",
            h.inv_bits
        );
    }
    for l in &low {
        assert!(l.inv_bits < 8.0, "8-bit INV alone: {} bits", l.inv_bits);
    }
    let gap_low: f64 = low
        .iter()
        .zip(&exact)
        .map(|(l, e)| (l.train_loss - e.train_loss).abs())
        .sum();
    let gap_high: f64 = high
        .iter()
        .zip(&exact)
        .map(|(h, e)| (h.train_loss - e.train_loss).abs())
        .sum();
    assert!(
        gap_low > 10.0 * gap_high,
        "loss gap: 8-bit {gap_low:e}, high precision {gap_high:e}"
    );
}

#[test]
fn sgd_adam_and_the_cnn_train() {
    let sgd = run(
        Net::Mlp { hidden: 32 },
        Optimizer::Sgd {
            lr: 0.1,
            momentum: 0.9,
        },
        5,
    );
    assert!(sgd.last().unwrap().test_acc > 0.9, "{sgd:?}");
    let adam = run(Net::Mlp { hidden: 32 }, Optimizer::Adam { lr: 0.003 }, 5);
    assert!(adam.last().unwrap().test_acc > 0.85, "{adam:?}");
    let cnn = run(
        Net::Cnn { channels: 8 },
        Optimizer::kfac(InverseKind::Exact),
        3,
    );
    assert!(cnn.last().unwrap().test_acc > 0.9, "{cnn:?}");
    assert!(sgd
        .iter()
        .all(|r| r.inv_bits.is_nan() && r.inv_failures == 0));
}

fn accel(mapping: Mapping) -> Accel {
    Accel {
        tech: Technology::isaac32(),
        vmm: VmmConfig::isaac(),
        hp: HpConfig::default_refine(),
        rounds: 5.0,
        lambda_min: 0.05,
        mapping,
        inv_units: 128,
        copies: 4,
    }
}

#[test]
fn the_accelerator_model_orders_its_designs_sensibly() {
    let t = Technology::isaac32();
    for name in WORKLOADS {
        let mut w = Workload::builtin(name).unwrap();
        let fused = kfac_iteration(&w, &accel(Mapping::Fused)).unwrap();
        let sep = kfac_iteration(&w, &accel(Mapping::Separate)).unwrap();
        assert!(fused.phases.iter().all(|p| p.ns >= 0.0 && p.pj >= 0.0));
        assert!(sep.latency_ns() > fused.latency_ns(), "{name}");
        assert!(sep.energy_pj() > fused.energy_pj(), "{name}");
        let pipe = pipelayer_iteration(&t, &w, &VmmConfig::isaac(), 4).unwrap();
        assert_eq!(pipe.phase_ns("factor inversion"), 0.0);
        assert!(
            pipe.latency_ns() < fused.latency_ns(),
            "{name}: SGD iterations are cheaper"
        );
        // Inverting every iteration costs ten times the amortised inversion.
        let every10 = fused.phase_ns("factor inversion");
        w.inv_every = 1;
        let every1 = kfac_iteration(&w, &accel(Mapping::Fused)).unwrap();
        assert!((every1.phase_ns("factor inversion") / every10 - 10.0).abs() < 1e-9);
    }
    let mut few = accel(Mapping::Fused);
    few.inv_units = 64;
    let e = kfac_iteration(&Workload::builtin("mnist-mlp").unwrap(), &few).unwrap_err();
    assert!(e.to_string().contains("INV units"), "{e}");
    assert!(Workload::builtin("resnet")
        .unwrap_err()
        .to_string()
        .contains("digits-mlp"));
}
