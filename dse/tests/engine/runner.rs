use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use dse::journal::{self, PointRecord};
use dse::model::{
    Direction, EvalContext, MetricSpec, Model, ModelError, ModelInfo, ParamSpec, Registry, Value,
};
use dse::runner::{run, RunError, RunOptions, Shard};

/// A model with every parameter kind, a trade-off between its two metrics, and points that
/// fail (error), panic, or return NaN.
pub struct Mixed {
    info: ModelInfo,
}

impl Default for Mixed {
    fn default() -> Self {
        Mixed {
            info: ModelInfo {
                name: "mixed".into(),
                version: "1".into(),
                summary: "test model with every parameter kind".into(),
                params: vec![
                    ParamSpec::int("n", 1, 64, 8, "lanes", "parallel lanes"),
                    ParamSpec::log_real("width", 1.0, 1024.0, 32.0, "bits", "datapath width"),
                    ParamSpec::categorical("mode", &["a", "b", "c"], "a", "operating mode"),
                    ParamSpec::boolean("flag", false, "an option"),
                ],
                metrics: vec![
                    MetricSpec::new("cost", "LUT", Direction::Minimize, "area").bounded(0.0, 1e6),
                    MetricSpec::new("delay", "ns", Direction::Minimize, "latency"),
                ],
            },
        }
    }
}

impl Model for Mixed {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn timeline(&self, p: &[Value]) -> Option<dse::model::Timeline> {
        // One row per lane, a "work" bar then a "wait" bar whose length depends on the point.
        let n = p[0].as_f64()? as usize;
        let w = p[1].as_f64()?;
        let bars = (0..n)
            .flat_map(|r| {
                let t = (r + 1) as f64 * w;
                [
                    dse::model::TimelineBar {
                        row: r,
                        activity: 0,
                        start: 0.0,
                        end: t,
                    },
                    dse::model::TimelineBar {
                        row: r,
                        activity: 1,
                        start: t,
                        end: t + w,
                    },
                ]
            })
            .collect();
        Some(dse::model::Timeline {
            title: format!("{n} lanes"),
            rows: (0..n).map(|r| format!("lane{r}")).collect(),
            activities: vec!["work".into(), "wait".into()],
            bars,
            unit: "ns".into(),
        })
    }
    fn evaluate(&self, p: &[Value], _: &EvalContext) -> Result<Vec<f64>, ModelError> {
        let (Value::Int(n), Value::Real(w), Value::Cat(mode), Value::Bool(flag)) =
            (&p[0], &p[1], &p[2], &p[3])
        else {
            return Err(ModelError::Failed("bad point".into()));
        };
        let k = match mode.as_str() {
            "a" => 1.0,
            "b" => 2.0,
            _ => 3.0,
        };
        if *n == 13 {
            return Err(ModelError::Infeasible("n = 13 is unlucky".into()));
        }
        if *n == 17 && mode == "c" {
            panic!("boom at 17");
        }
        if *n == 19 && *flag {
            return Ok(vec![f64::NAN, 1.0]);
        }
        let n = *n as f64;
        Ok(vec![
            n * w * k + if *flag { 10.0 } else { 0.0 },
            1000.0 / n + 5000.0 / (w * k) + if *flag { -3.0 } else { 0.0 },
        ])
    }
}

/// A model with 300 real parameters (wider than some samplers allow).
struct Wide {
    info: ModelInfo,
}

impl Model for Wide {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn evaluate(&self, p: &[Value], _: &EvalContext) -> Result<Vec<f64>, ModelError> {
        Ok(vec![p.iter().filter_map(|v| v.as_f64()).sum()])
    }
}

pub fn registry() -> Registry {
    let mut r = dse::benchmark_registry();
    r.register(Arc::new(Mixed::default()));
    let params = (0..300)
        .map(|i| ParamSpec::real(&format!("x{i}"), 0.0, 1.0, 0.5, "", "input"))
        .collect();
    let metrics = vec![MetricSpec::new("s", "", Direction::Minimize, "sum")];
    r.register(Arc::new(Wide {
        info: ModelInfo {
            name: "wide".into(),
            version: "1".into(),
            summary: "300 inputs".into(),
            params,
            metrics,
        },
    }));
    r
}

/// Wraps a model and raises the cancel flag after `after` evaluations.
struct Interrupting {
    inner: Arc<dyn Model>,
    count: AtomicUsize,
    after: usize,
    cancel: Arc<AtomicBool>,
}

impl Model for Interrupting {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }
    fn evaluate(&self, p: &[Value], ctx: &EvalContext) -> Result<Vec<f64>, ModelError> {
        if self.count.fetch_add(1, Ordering::SeqCst) + 1 == self.after {
            self.cancel.store(true, Ordering::SeqCst);
        }
        self.inner.evaluate(p, ctx)
    }
}

pub fn study(strategy: &str, extra: &str) -> dse::Study {
    let text = format!("name = \"r\"\nmodel = \"mixed\"\nseed = 11\n{extra}\n[strategy]\n{strategy}\n[objectives]\nminimize = [\"cost\", \"delay\"]\n");
    dse::config::parse(&text, "r.toml", &registry()).unwrap_or_else(|e| panic!("{e}"))
}

/// The journal's points without timings, sorted by index.
fn points(dir: &std::path::Path) -> Vec<PointRecord> {
    let mut p = journal::read(&dir.join("journal.jsonl")).unwrap().points;
    for r in &mut p {
        r.t = 0.0;
    }
    p.sort_by_key(|r| r.i);
    p
}

fn quiet(dir: &std::path::Path) -> RunOptions {
    let mut o = RunOptions::new(dir);
    o.write_outputs = false;
    o
}

/// Runs with interruptions after every `after` evaluations until done; returns the number of
/// interrupted runs.
fn run_interrupted(study: &dse::Study, dir: &std::path::Path, after: usize) -> usize {
    let mut interrupts = 0;
    loop {
        let cancel = Arc::new(AtomicBool::new(false));
        let mut s = study.clone();
        s.model = Arc::new(Interrupting {
            inner: study.model.clone(),
            count: AtomicUsize::new(0),
            after,
            cancel: cancel.clone(),
        });
        let mut o = quiet(dir);
        o.cancel = cancel;
        let summary = run(&s, &o).unwrap();
        if !summary.interrupted {
            return interrupts;
        }
        interrupts += 1;
        assert!(interrupts < 1000);
    }
}

#[test]
fn interrupted_and_resumed_equals_uninterrupted() {
    for strategy in [
        "kind = \"random\"\nbudget = 3000",
        "kind = \"sobol\"\nbudget = 1000",
        "kind = \"nsga2\"\npopulation = 40\ngenerations = 30",
        "kind = \"nsga3\"\npopulation = 24\ngenerations = 20",
        "kind = \"smsemoa\"\npopulation = 20\ngenerations = 15",
    ] {
        let s = study(strategy, "");
        let whole = tempfile::tempdir().unwrap();
        run(&s, &quiet(whole.path())).unwrap();
        let parts = tempfile::tempdir().unwrap();
        let n = run_interrupted(&s, parts.path(), 53);
        assert!(n >= 3, "{strategy}: only {n} interruptions");
        assert_eq!(points(whole.path()), points(parts.path()), "{strategy}");
        let a = journal::read(&whole.path().join("journal.jsonl"))
            .unwrap()
            .gens;
        let b = journal::read(&parts.path().join("journal.jsonl"))
            .unwrap()
            .gens;
        assert_eq!(a, b, "{strategy}: generation records differ");
    }
}

#[test]
fn failures_are_recorded_and_the_sweep_goes_on() {
    let s = study("kind = \"grid\"", "[parameters]\nn = [12, 13, 17, 19]\nwidth = 4.0\nmode = [\"a\", \"c\"]\nflag = [false, true]");
    let dir = tempfile::tempdir().unwrap();
    let summary = run(&s, &RunOptions::new(dir.path())).unwrap();
    assert_eq!(summary.stored, 16);
    let p = points(dir.path());
    let failed: Vec<&PointRecord> = p.iter().filter(|r| r.m.is_none()).collect();
    // n = 13: 4 errors; n = 17 with mode c: 2 panics; n = 19 with flag: 2 NaN.
    assert_eq!(failed.len(), 8, "{failed:?}");
    assert_eq!(summary.failed, 8);
    assert!(failed
        .iter()
        .any(|r| r.e.as_deref() == Some("infeasible design: n = 13 is unlucky")));
    assert!(failed
        .iter()
        .any(|r| r.e.as_deref() == Some("panic: boom at 17")));
    assert!(failed.iter().any(|r| r
        .e
        .as_deref()
        .is_some_and(|e| e.starts_with("non-finite metric value"))));
    let df = dse::results::read_table(&dir.path().join("points.parquet")).unwrap();
    assert_eq!(df.height(), 16);
    let statuses: Vec<Option<&str>> = df.column("status").unwrap().str().unwrap().iter().collect();
    assert_eq!(statuses.iter().filter(|s| **s == Some("failed")).count(), 8);
    let csv = dse::results::read_table(&dir.path().join("points.csv")).unwrap();
    assert_eq!(csv.height(), 16);
    for col in [
        "index",
        "n",
        "width",
        "mode",
        "flag",
        "cost",
        "delay",
        "status",
        "error",
        "feasible",
        "violation",
        "pareto",
        "eval_seconds",
        "hash",
        "seed",
        "model",
        "model_version",
        "config_hash",
    ] {
        assert!(
            df.column(col).is_ok() && csv.column(col).is_ok(),
            "missing column {col}"
        );
    }
    assert!(
        dir.path().join("report.html").exists()
            && dir.path().join("plots/pareto.svg").exists()
            && dir.path().join("plots/pareto.png").exists()
    );
    // The model's timeline of the knee point is drawn (SVG with its row names, PNG, in the HTML).
    let svg = std::fs::read_to_string(dir.path().join("plots/timeline.svg")).unwrap();
    assert!(
        svg.contains("lane0") && svg.contains("wait"),
        "timeline SVG lacks rows/legend"
    );
    assert!(dir.path().join("plots/timeline.png").exists());
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("Timeline of the knee point"));
}

#[test]
fn mixed_variables_stay_in_their_domains_under_evolution() {
    let s = study(
        "kind = \"nsga2\"\npopulation = 20\ngenerations = 15",
        "[parameters]\nn = { min = 2, max = 40, step = 2 }\nmode = [\"a\", \"b\"]",
    );
    let dir = tempfile::tempdir().unwrap();
    run(&s, &quiet(dir.path())).unwrap();
    let info = s.model.info();
    let mut modes = std::collections::BTreeSet::new();
    for r in points(dir.path()) {
        let Value::Int(n) = r.p[0] else {
            panic!("n: {:?}", r.p[0])
        };
        assert!(n % 2 == 0 && (2..=40).contains(&n), "n = {n}");
        let Value::Real(w) = r.p[1] else {
            panic!("width: {:?}", r.p[1])
        };
        assert!((1.0..=1024.0).contains(&w));
        let Value::Cat(mode) = r.p[2].clone() else {
            panic!("mode: {:?}", r.p[2])
        };
        assert!(mode == "a" || mode == "b");
        modes.insert(mode);
        assert!(matches!(r.p[3], Value::Bool(_)));
        assert_eq!(r.p.len(), info.params.len());
    }
    assert_eq!(modes.len(), 2);
}

#[test]
fn torn_last_line_is_tolerated_and_cut() {
    let s = study("kind = \"random\"\nbudget = 200", "");
    let whole = tempfile::tempdir().unwrap();
    run(&s, &quiet(whole.path())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    run_interrupted(&s, dir.path(), 150);
    let path = dir.path().join("journal.jsonl");
    // Simulate a torn write: half of a record without its newline.
    let text = std::fs::read_to_string(&path).unwrap();
    let cut = text.len() - text.lines().last().unwrap().len() / 2 - 1;
    std::fs::write(&path, &text[..cut]).unwrap();
    let summary = run(&s, &quiet(dir.path())).unwrap();
    assert!(summary.torn_tail);
    assert_eq!(points(whole.path()), points(dir.path()));
}

#[test]
fn corruption_is_reported_and_nothing_is_written() {
    let s = study("kind = \"random\"\nbudget = 50", "");
    let dir = tempfile::tempdir().unwrap();
    run(&s, &quiet(dir.path())).unwrap();
    let path = dir.path().join("journal.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[10] = lines[10].replacen("\"i\":", "\"i\": ", 1);
    let damaged = lines.join("\n") + "\n";
    std::fs::write(&path, &damaged).unwrap();
    let e = run(&s, &quiet(dir.path())).expect_err("corrupt journal must be refused");
    assert!(
        e.to_string()
            .contains("journal.jsonl:11: corrupt journal record (checksum mismatch)"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        damaged,
        "the journal must be left untouched"
    );
}

#[test]
fn a_directory_of_another_study_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    run(
        &study("kind = \"random\"\nbudget = 20", ""),
        &quiet(dir.path()),
    )
    .unwrap();
    let before = std::fs::read(dir.path().join("journal.jsonl")).unwrap();
    let e = run(
        &study("kind = \"random\"\nbudget = 21", ""),
        &quiet(dir.path()),
    )
    .unwrap_err();
    assert!(
        matches!(e, RunError::Mismatch(_))
            && e.to_string().contains("choose another output directory"),
        "{e}"
    );
    let mut o = quiet(dir.path());
    o.shard = Some(Shard { index: 0, count: 2 });
    let e = run(&study("kind = \"random\"\nbudget = 20", ""), &o).unwrap_err();
    assert!(
        e.to_string()
            .contains("holds the whole study, but this run asks for shard 0/2"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("journal.jsonl")).unwrap(),
        before
    );
}

#[test]
fn a_foreign_study_toml_is_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("study.toml"), "my own notes").unwrap();
    let e = run(
        &study("kind = \"random\"\nbudget = 5", ""),
        &quiet(dir.path()),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("study.toml: exists with other contents"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("study.toml")).unwrap(),
        "my own notes"
    );
}

#[test]
fn an_unwritable_output_directory_is_reported() {
    let f = tempfile::NamedTempFile::new().unwrap();
    let e = run(
        &study("kind = \"random\"\nbudget = 5", ""),
        &quiet(&f.path().join("sub")),
    )
    .unwrap_err();
    assert!(
        matches!(e, RunError::OutputDir { .. })
            && e.to_string().contains("cannot use as output directory"),
        "{e}"
    );
}

#[test]
fn shards_merge_into_the_whole_study() {
    let reg = registry();
    for strategy in ["kind = \"lhs\"\nbudget = 301", "kind = \"grid\""] {
        let s = study(strategy, "[parameters]\nn = { min = 1, max = 20 }\nmode = [\"a\", \"b\"]\nwidth = { min = 1.0, max = 8.0, levels = 4 }");
        let whole = tempfile::tempdir().unwrap();
        run(&s, &quiet(whole.path())).unwrap();
        let root = tempfile::tempdir().unwrap();
        let dirs: Vec<std::path::PathBuf> = (0..3)
            .map(|i| root.path().join(format!("shard{i}")))
            .collect();
        for (i, d) in dirs.iter().enumerate() {
            let mut o = quiet(d);
            o.shard = Some(Shard { index: i, count: 3 });
            run(&s, &o).unwrap();
        }
        // Merge twice the same shard too: duplicates are dropped.
        let mut inputs = dirs.clone();
        inputs.push(dirs[1].clone());
        let out = root.path().join("merged");
        let m = dse::merge::merge(&inputs, &out, &reg).unwrap();
        assert!(m.missing_shards.is_empty());
        assert!(m.duplicates > 0);
        assert_eq!(points(whole.path()), points(&out), "{strategy}");
        // A partial merge says which shard is missing; merging into a used directory fails.
        let partial = dse::merge::merge(&dirs[..2], &root.path().join("partial"), &reg).unwrap();
        assert_eq!(partial.missing_shards, vec![2]);
        assert!(dse::merge::merge(&dirs, &out, &reg).is_err());
    }
}

#[test]
fn evolutionary_sweeps_refuse_shards() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = quiet(dir.path());
    o.shard = Some(Shard { index: 0, count: 2 });
    let e = run(
        &study("kind = \"nsga2\"\npopulation = 8\ngenerations = 2", ""),
        &o,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("--shard splits grid/random/lhs/sobol sweeps"),
        "{e}"
    );
}

#[test]
fn no_feasible_point_is_warned_in_the_report() {
    let s = study(
        "kind = \"random\"\nbudget = 30",
        "constraints = [\"cost < 0.5\"]",
    );
    let dir = tempfile::tempdir().unwrap();
    let summary = run(&s, &RunOptions::new(dir.path())).unwrap();
    assert_eq!(summary.feasible, 0);
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(
        html.contains("no evaluated point meets the constraints"),
        "report lacks the warning"
    );
}

#[test]
fn points_typed_on_a_command_line_are_checked_against_the_domain() {
    let m = Mixed::default();
    let info = m.info();
    let p = info
        .point_with(&["n=12".into(), "mode=b".into(), "flag=true".into()])
        .unwrap();
    assert_eq!(
        p,
        vec![
            Value::Int(12),
            Value::Real(32.0),
            Value::Cat("b".into()),
            Value::Bool(true)
        ]
    );
    for (arg, want) in [
        ("n=100", "integer in [1, 64]"),
        ("mode=z", "one of a, b, c"),
        ("speed=3", "parameters: n, width, mode, flag"),
        ("n", "NAME=VALUE"),
        ("flag=yes", "true or false"),
    ] {
        let e = info.point_with(&[arg.into()]).unwrap_err();
        assert!(e.contains(want), "{arg}: {e}");
    }
}
