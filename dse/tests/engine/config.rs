use dse::config::{parse, ConfigError, Strategy};
use dse::model::Value;
use dse::space::Domain;

use crate::runner::registry;

fn err(text: &str) -> ConfigError {
    parse(text, "t.toml", &registry()).expect_err("should fail")
}

const HEAD: &str = "name = \"t\"\nmodel = \"mixed\"\n";
const TAIL: &str =
    "\n[strategy]\nkind = \"random\"\nbudget = 10\n\n[objectives]\nminimize = [\"cost\"]\n";

#[test]
fn a_full_config_resolves() {
    let text = format!(
        "{HEAD}seed = 7\nconstraints = [\"delay <= 200\", \"cost < 5e4 and n >= 2\"]\n[parameters]\nn = {{ min = 2, max = 32, step = 2 }}\nwidth = {{ min = 1.0, max = 256.0, log = true }}\nmode = [\"a\", \"c\"]\nflag = true\n{TAIL}"
    );
    let s = parse(&text, "t.toml", &registry()).unwrap();
    assert_eq!(s.seed, 7);
    assert_eq!(s.constraints.len(), 2);
    assert_eq!(s.space.dims.len(), 3);
    assert_eq!(
        s.space.dims[0].domain,
        Domain::Int {
            min: 2,
            max: 32,
            step: 2
        }
    );
    assert!(matches!(
        s.space.dims[1].domain,
        Domain::Real { log: true, .. }
    ));
    assert_eq!(
        s.space.dims[2].domain,
        Domain::Choice(vec![Value::Cat("a".into()), Value::Cat("c".into())])
    );
    assert_eq!(s.space.base[3], Value::Bool(true));
    assert_eq!(s.strategy, Strategy::Random { budget: 10 });
    // The hash ignores the output directory but not the seed.
    let s2 = parse(
        &text.replace("seed = 7", "seed = 7\noutput = \"elsewhere\""),
        "t.toml",
        &registry(),
    )
    .unwrap();
    assert_eq!(s.config_hash, s2.config_hash);
    let s3 = parse(&text.replace("seed = 7", "seed = 8"), "t.toml", &registry()).unwrap();
    assert_ne!(s.config_hash, s3.config_hash);
}

#[test]
fn unlisted_parameters_sweep_or_stay_at_their_defaults() {
    let text = |unlisted: &str| {
        format!("{HEAD}unlisted = \"{unlisted}\"\n[parameters]\nn = [2, 4]\n{TAIL}")
    };
    let sweep = parse(&text("sweep"), "t.toml", &registry()).unwrap();
    assert_eq!(
        sweep
            .space
            .dims
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        ["n", "width", "mode", "flag"]
    );
    let fixed = parse(&text("default"), "t.toml", &registry()).unwrap();
    assert_eq!(fixed.space.dims.len(), 1);
    assert_eq!(
        fixed.space.base[1..],
        [
            Value::Real(32.0),
            Value::Cat("a".into()),
            Value::Bool(false)
        ]
    );
    let e = parse(&text("all"), "t.toml", &registry()).unwrap_err();
    assert!(
        e.to_string()
            .contains("unlisted must be \"sweep\" or \"default\""),
        "{e}"
    );
}

#[test]
fn malformed_toml_reports_line_and_column() {
    let e = err("name = \"t\"\nmodel = \"zdt1\"\n[strategy\nkind = \"grid\"\n");
    assert_eq!(e.at.map(|a| a.0), Some(3), "{e}");
    assert!(e.to_string().starts_with("t.toml:3:"), "{e}");
}

#[test]
fn unknown_names_list_the_valid_ones() {
    let e = err(&format!("name = \"t\"\nmodel = \"zdt9\"\n{TAIL}"));
    assert!(e.to_string().contains("t.toml:2:9: unknown model 'zdt9'; valid models: dtlz2, mixed, trivial, wide, zdt1, zdt2, zdt3"), "{e}");
    let e = err(&format!("{HEAD}[parameters]\nwidht = 3.0\n{TAIL}"));
    assert!(
        e.to_string().contains("unknown parameter 'widht'")
            && e.to_string()
                .contains("valid parameters: n, width, mode, flag"),
        "{e}"
    );
    let e = err(&format!(
        "{HEAD}{}",
        TAIL.replace("[\"cost\"]", "[\"area\"]")
    ));
    assert!(
        e.to_string().contains("unknown metric 'area'")
            && e.to_string().contains("valid metrics: cost, delay"),
        "{e}"
    );
    let e = err(&format!(
        "{HEAD}{}",
        TAIL.replace("\"random\"", "\"annealing\"")
    ));
    assert!(e.to_string().contains("unknown strategy 'annealing'; valid strategies: grid, random, lhs, sobol, nsga2, nsga3, smsemoa"), "{e}");
    let e = err(&format!("{HEAD}constraints = [\"latency < 3\"]\n{TAIL}"));
    assert!(
        e.to_string()
            .contains("unknown name 'latency' in constraint; metrics: cost, delay"),
        "{e}"
    );
    let e = err(&format!("{HEAD}colour = 3\n{TAIL}"));
    assert!(e.to_string().contains("unknown field `colour`"), "{e}");
}

#[test]
fn out_of_range_and_empty_domains_are_rejected() {
    for (params, needle) in [
        ("n = 100", "out of range for parameter 'n'"),
        ("n = { min = 10, max = 5 }", "empty range for 'n'"),
        ("n = { min = 0, max = 5 }", "leaves the model's domain"),
        ("n = []", "empty list of values for parameter 'n'"),
        (
            "width = { min = 0.5, max = 2.0 }",
            "leaves the model's domain",
        ),
        ("mode = \"d\"", "out of range for parameter 'mode'"),
        ("mode = { min = 1 }", "give one value or a list"),
        ("flag = 1", "takes true or false"),
        ("n = 2.5", "takes integer in [1, 64]"),
        ("n = { min = 1, max = 4, step = 0 }", "step >= 1"),
        (
            "width = { min = 1.0, max = 2.0, bogus = 1 }",
            "unknown key 'bogus'",
        ),
    ] {
        let e = err(&format!("{HEAD}[parameters]\n{params}\n{TAIL}"));
        assert!(e.to_string().contains(needle), "{params}: {e}");
        assert_eq!(e.at.map(|a| a.0), Some(4), "{params}: {e}");
    }
}

#[test]
fn strategy_settings_are_checked() {
    let bad = |s: &str| {
        err(&format!(
            "{HEAD}\n[strategy]\n{s}\n\n[objectives]\nminimize = [\"cost\"]\n"
        ))
        .to_string()
    };
    assert!(bad("kind = \"random\"").contains("needs budget"));
    assert!(bad("kind = \"random\"\nbudget = 0").contains("at least 1"));
    assert!(bad("kind = \"nsga2\"\npopulation = 2").contains("at least 4"));
    assert!(
        bad("kind = \"nsga2\"\ncrossover_prob = 1.5").contains("crossover_prob must lie in [0, 1]")
    );
    assert!(bad("kind = \"grid\"\npopulation = 10").contains("'population' applies to nsga2/nsga3"));
    assert!(bad("kind = \"grid\"\nbudget = 5").contains("more than budget = 5"));
    assert!(bad("kind = \"nsga2\"\ncrowding = \"fancy\"").contains("valid: pruning, classic"));
}

#[test]
fn sobol_limits_are_checked() {
    let text = |budget: usize, model: &str, obj: &str| {
        format!("name = \"s\"\nmodel = \"{model}\"\n[strategy]\nkind = \"sobol\"\nbudget = {budget}\n[objectives]\nminimize = [\"{obj}\"]\n")
    };
    let e = parse(&text(65_537, "mixed", "cost"), "t.toml", &registry()).unwrap_err();
    assert!(
        e.to_string()
            .contains("t.toml:5:10: the Sobol sampler supports at most 65536 points"),
        "{e}"
    );
    assert!(parse(&text(65_536, "mixed", "cost"), "t.toml", &registry()).is_ok());
    let e = parse(&text(100, "wide", "s"), "t.toml", &registry()).unwrap_err();
    assert!(
        e.to_string()
            .contains("at most 256 free parameters, this space has 300"),
        "{e}"
    );
}

#[test]
fn no_objectives_is_an_error() {
    let e = err(&format!(
        "{HEAD}\n[strategy]\nkind = \"grid\"\n\n[objectives]\n"
    ));
    assert!(e.to_string().contains("no objectives"), "{e}");
}

#[test]
fn impossible_constraints_warn() {
    // cost of the mixed model lies in [0, 1e6] (declared); n is at most 64.
    let s = parse(
        &format!("{HEAD}constraints = [\"cost < -1\", \"n > 100 or delay > 0\"]\n{TAIL}"),
        "t.toml",
        &registry(),
    )
    .unwrap();
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    assert!(
        s.warnings[0].contains("'cost < -1' can never be met"),
        "{:?}",
        s.warnings
    );
    assert!(s.warnings[0].starts_with("t.toml:3:"), "{:?}", s.warnings);
}

#[test]
fn shipped_configs_validate() {
    let reg = registry();
    for entry in std::fs::read_dir("../configs").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            // Configs of hardware models need the full registry; the CLI test validates those.
            let text = std::fs::read_to_string(&path).unwrap();
            let benchmark_models = ["zdt1", "zdt2", "zdt3", "dtlz2", "trivial"];
            let uses_benchmark = text.lines().any(|l| {
                benchmark_models
                    .iter()
                    .any(|m| l.trim() == format!("model = \"{m}\""))
            });
            if !uses_benchmark {
                continue;
            }
            let s = dse::config::load(&path, &reg).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                s.warnings.is_empty(),
                "{}: {:?}",
                path.display(),
                s.warnings
            );
        }
    }
}
