//! The modred design models: registration, metrics that follow from the inventory, infeasible
//! points reported as such, and the calibrated area model against the committed Yosys counts.

use dse::model::{EvalContext, Model, ModelError, Value};
use models::modred::{calibration, ModredModel};
use sim::modred::cost::{FpgaCoeffs, Inventory, Weights};

fn point(model: &ModredModel, set: &[(&str, Value)]) -> Vec<Value> {
    model
        .info()
        .params
        .iter()
        .map(|p| {
            set.iter()
                .find(|(n, _)| *n == p.name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| p.default.clone())
        })
        .collect()
}

fn metric(model: &ModredModel, m: &[f64], name: &str) -> f64 {
    m[model.info().metric_index(name).unwrap()]
}

#[test]
fn metrics_follow_from_the_inventory() {
    let model = ModredModel::lut();
    let ctx = EvalContext { seed: 1 };
    for arch in ["lut", "iter", "hybrid"] {
        let p = point(
            &model,
            &[
                ("arch", Value::Cat(arch.into())),
                ("cycles", Value::Int(8)),
                ("lut_share", Value::Real(0.3)),
            ],
        );
        let m = model.evaluate(&p, &ctx).unwrap();
        let area = metric(&model, &m, "area");
        let thr = metric(&model, &m, "throughput");
        let ii = metric(&model, &m, "ii_cycles");
        assert_eq!(thr, 200.0 / ii, "{arch}");
        assert!((metric(&model, &m, "area_eff") - thr / (area / 1000.0)).abs() < 1e-9);
        assert_eq!(
            metric(&model, &m, "latency_ns"),
            metric(&model, &m, "latency_cycles") * 5.0
        );
        assert!(area >= metric(&model, &m, "luts"));
        assert!(metric(&model, &m, "fmax_mhz") > 10.0);
        if arch == "lut" {
            assert_eq!(ii, 1.0);
        } else {
            assert_eq!(ii, 8.0, "{arch}");
        }
    }
    // The same point twice gives the same metrics (the journal relies on it).
    let p = point(&model, &[("bits", Value::Cat("8192".into()))]);
    assert_eq!(
        model.evaluate(&p, &ctx).unwrap(),
        model.evaluate(&p, &ctx).unwrap()
    );
}

#[test]
fn infeasible_points_say_why() {
    let model = ModredModel::lut();
    let ctx = EvalContext { seed: 1 };
    // A hybrid whose tables take no bit has no LUT part.
    let p = point(
        &model,
        &[
            ("arch", Value::Cat("hybrid".into())),
            ("lut_share", Value::Real(0.0)),
        ],
    );
    match model.evaluate(&p, &ctx) {
        Err(ModelError::Infeasible(msg)) => {
            assert!(msg.contains("a hybrid needs both parts"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
    // A deep LUT tree cannot finish within one iterative cycle.
    let p = point(
        &model,
        &[
            ("arch", Value::Cat("hybrid".into())),
            ("cycles", Value::Int(1)),
            ("lut_share", Value::Real(0.5)),
        ],
    );
    assert!(matches!(
        model.evaluate(&p, &ctx),
        Err(ModelError::Infeasible(_))
    ));
}

#[test]
fn baselines_use_dsp_multipliers() {
    let ctx = EvalContext { seed: 1 };
    for arch in [sim::modred::Arch::Barrett, sim::modred::Arch::Montgomery] {
        let model = ModredModel::baseline(arch);
        let m = model.evaluate(&point(&model, &[]), &ctx).unwrap();
        // 129 x 129 and 129 x 128 products of 24 x 17 tiles.
        assert!(metric(&model, &m, "dsp") > 40.0, "{arch:?}");
        assert_eq!(metric(&model, &m, "ii_cycles"), 1.0);
    }
}

/// The committed synthesis results (results/modred/synth.csv, from `archsweep rtl calibrate`)
/// against the model with the committed calibration: every design within the stated error.
#[test]
fn area_model_stays_within_its_stated_error_of_yosys() {
    let csv = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../results/modred/synth.csv"
    ))
    .expect("results/modred/synth.csv");
    let (max_lut, max_ff) = calibration::stated_errors(calibration::committed_text())
        .expect("the committed calibration states its errors");
    let coeffs: FpgaCoeffs = calibration::committed();
    let set = calibration::reference_set();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let mut seen = 0;
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let r = set
            .iter()
            .find(|r| r.name == f[col("name")])
            .expect("a reference design");
        let inv = Inventory::of_plan(&r.plan().unwrap());
        let (feat, _) = inv.features(&Weights::default());
        // The committed features are the model's current ones (else: recalibrate).
        assert_eq!(
            feat.rom_luts,
            f[col("rom_luts")].parse::<f64>().unwrap(),
            "{}: rerun archsweep rtl calibrate",
            r.name
        );
        assert_eq!(
            feat.register_bits,
            f[col("register_bits")].parse::<f64>().unwrap(),
            "{}",
            r.name
        );
        let c = inv.cost(&coeffs, &Weights::default());
        let y_lut: f64 = f[col("yosys_luts")].parse().unwrap();
        let y_ff: f64 = f[col("yosys_ffs")].parse().unwrap();
        let e_lut = ((c.luts - y_lut) / y_lut).abs();
        let e_ff = ((c.ffs - y_ff) / y_ff).abs();
        assert!(
            e_lut <= max_lut + 1e-6,
            "{}: LUT error {e_lut} > {max_lut}",
            r.name
        );
        assert!(
            e_ff <= max_ff + 1e-6,
            "{}: FF error {e_ff} > {max_ff}",
            r.name
        );
        seen += 1;
    }
    assert_eq!(seen, set.len(), "every reference design is in synth.csv");
    // The stated errors are meaningful bounds, not placeholders.
    assert!(max_lut < 0.5 && max_ff < 0.5, "{max_lut} {max_ff}");
}
