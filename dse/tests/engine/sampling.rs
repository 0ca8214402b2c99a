use dse::config::{parse, Strategy};
use dse::model::Value;
use dse::strategy::sampling::Plan;

use crate::runner::registry;

fn study(strategy: &str, params: &str) -> dse::Study {
    let text = format!("name = \"s\"\nmodel = \"mixed\"\nseed = 3\n[parameters]\n{params}\n[strategy]\n{strategy}\n[objectives]\nminimize = [\"cost\"]\n");
    parse(&text, "s.toml", &registry()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn grid_enumerates_every_combination_once() {
    let s = study("kind = \"grid\"", "n = [1, 2, 4]\nwidth = { min = 1.0, max = 100.0, log = true, levels = 3 }\nmode = [\"a\", \"b\"]\nflag = [true, false]");
    let plan = Plan::new(&s.space, &s.strategy, s.seed).unwrap();
    assert_eq!(plan.len(), 3 * 3 * 2 * 2);
    let pts: Vec<Vec<Value>> = (0..plan.len()).map(|k| plan.point(k)).collect();
    for (i, a) in pts.iter().enumerate() {
        for b in &pts[i + 1..] {
            assert_ne!(a, b);
        }
    }
    let widths: Vec<f64> = pts
        .iter()
        .filter_map(|p| {
            if let Value::Real(w) = p[1] {
                Some(w)
            } else {
                None
            }
        })
        .collect();
    for w in [1.0, 10.0, 100.0] {
        assert!(
            widths.iter().any(|x| (x - w).abs() < 1e-9),
            "log grid should hit {w}"
        );
    }
}

#[test]
fn lhs_puts_one_point_in_every_stratum() {
    let s = study(
        "kind = \"lhs\"\nbudget = 50",
        "n = 8\nmode = \"a\"\nflag = false\nwidth = { min = 1.0, max = 1024.0 }",
    );
    let plan = Plan::new(&s.space, &s.strategy, s.seed).unwrap();
    let mut strata = vec![0; 50];
    for k in 0..50 {
        let u = plan.unit_point(k)[0];
        strata[(u * 50.0) as usize] += 1;
    }
    assert!(strata.iter().all(|&c| c == 1), "{strata:?}");
}

#[test]
fn samplers_stay_in_the_domain_and_are_deterministic() {
    for kind in ["random", "lhs", "sobol"] {
        let s = study(
            &format!("kind = \"{kind}\"\nbudget = 200"),
            "n = { min = 4, max = 16, step = 4 }\nwidth = { min = 2.0, max = 8.0, log = true }",
        );
        let plan = Plan::new(&s.space, &s.strategy, s.seed).unwrap();
        let again = Plan::new(&s.space, &s.strategy, s.seed).unwrap();
        let mut seen_n = std::collections::BTreeSet::new();
        for k in 0..plan.len() {
            let p = plan.point(k);
            assert_eq!(p, again.point(k));
            match (&p[0], &p[1]) {
                (Value::Int(n), Value::Real(w)) => {
                    assert!([4, 8, 12, 16].contains(n), "{kind}: n = {n}");
                    assert!((2.0..=8.0).contains(w), "{kind}: width = {w}");
                    seen_n.insert(*n);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(seen_n.len(), 4, "{kind} should visit every n");
        assert!(matches!(
            s.strategy,
            Strategy::Random { .. } | Strategy::Lhs { .. } | Strategy::Sobol { .. }
        ));
    }
}

#[test]
fn sobol_is_more_uniform_than_random() {
    // Star discrepancy proxy: worst deviation of the empirical CDF over 2-D boxes [0,a)x[0,b).
    let disc = |pts: &[Vec<f64>]| {
        let mut worst: f64 = 0.0;
        for i in 1..=16 {
            for j in 1..=16 {
                let (a, b) = (i as f64 / 16.0, j as f64 / 16.0);
                let inside =
                    pts.iter().filter(|p| p[0] < a && p[1] < b).count() as f64 / pts.len() as f64;
                worst = worst.max((inside - a * b).abs());
            }
        }
        worst
    };
    let params = "n = 8\nmode = \"a\"\nflag = false\nwidth = { min = 1.0, max = 2.0 }";
    let unit = |kind: &str| {
        let s = study(
            &format!("kind = \"{kind}\"\nbudget = 256"),
            &params.replace("n = 8", "n = { min = 1, max = 64 }"),
        );
        let plan = Plan::new(&s.space, &s.strategy, s.seed).unwrap();
        (0..256).map(|k| plan.unit_point(k)).collect::<Vec<_>>()
    };
    let (sobol, random) = (disc(&unit("sobol")), disc(&unit("random")));
    assert!(sobol < random, "sobol {sobol} vs random {random}");
}
