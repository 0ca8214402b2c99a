//! End-to-end tests of the `archsweep` binary: commands, bad input (exit code 2, never a
//! panic), and crash safety under SIGKILL.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_archsweep"))
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    bin()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run archsweep")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Asserts a clean failure: exit code 2, the message on stderr, no panic.
fn fails_with(o: &Output, needle: &str) {
    let (out, err) = text(o);
    assert_eq!(o.status.code(), Some(2), "stdout: {out}\nstderr: {err}");
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .display()
        .to_string()
}

#[test]
fn list_shows_models_and_their_parameters() {
    let d = tempfile::tempdir().unwrap();
    let (out, _) = text(&run_in(d.path(), &["list"]));
    for m in ["zdt1", "zdt2", "zdt3", "dtlz2", "trivial"] {
        assert!(
            out.lines().any(|l| l.starts_with(m)),
            "{m} missing from: {out}"
        );
    }
    let (out, _) = text(&run_in(d.path(), &["list", "dtlz2"]));
    assert!(
        out.contains("x12: real in [0, 1]") && out.contains("f3 (lower is better)"),
        "{out}"
    );
    fails_with(
        &run_in(d.path(), &["list", "nope"]),
        "unknown model 'nope'; valid models: attention.masked, dtlz2, gemv.lowbit, kvcache.pq, modred.barrett, modred.lut, modred.montgomery, pcie.dma, precision.switch, reram.inv, reram.kfac, ring.attention, trivial, zdt1, zdt2, zdt3",
    );
}

#[test]
fn quickstart_runs_from_the_embedded_config_and_writes_a_report() {
    let d = tempfile::tempdir().unwrap();
    let o = run_in(d.path(), &["sweep"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    let dir = d.path().join("runs/quickstart");
    for f in [
        "report.html",
        "points.parquet",
        "points.csv",
        "journal.jsonl",
        "study.toml",
        "summary.json",
        "plots/pareto.svg",
        "plots/pareto.png",
        "plots/parallel.svg",
        "plots/hypervolume.png",
    ] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        html.contains("<svg")
            && html.contains("Pareto front")
            && html.contains("knee")
            && !html.contains("http://")
            || html.contains("xmlns=\"http://www.w3.org/2000/svg\"")
    );
    assert!(
        !html.contains("<script src") && !html.contains("<link"),
        "the report must be self-contained"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert!(summary["hypervolume"].as_f64().unwrap() > 0.0);
    assert!(summary["front"].as_array().unwrap().len() >= 50);
    // Running again finds everything in the journal.
    let (out, _) = text(&run_in(d.path(), &["sweep", "--quiet"]));
    assert!(
        out.contains("0 evaluated now, 15000 from the journal"),
        "{out}"
    );
    // The report command rebuilds the same report.
    std::fs::remove_file(dir.join("report.html")).unwrap();
    assert!(run_in(d.path(), &["report", "runs/quickstart"])
        .status
        .success());
    assert!(dir.join("report.html").exists());
}

#[test]
fn validate_accepts_the_shipped_configs() {
    let d = tempfile::tempdir().unwrap();
    for c in [
        "quickstart",
        "zdt1",
        "zdt2",
        "zdt3",
        "dtlz2",
        "modred_128",
        "modred_8192",
        "attention_masked",
        "kvcache_pq",
        "ring_nvlink",
        "ring_pcie",
        "reram_inv",
        "reram_kfac",
        "pcie_dma",
        "lowbit_gemv",
        "lowbit_formats",
        "lowbit_switch",
    ] {
        let o = run_in(d.path(), &["validate", &repo(&format!("configs/{c}.toml"))]);
        let (out, err) = text(&o);
        assert!(
            o.status.success() && out.contains(": ok"),
            "{c}: {out}{err}"
        );
    }
}

#[test]
fn bad_input_exits_2_with_a_located_message() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let base = "name = \"b\"\nmodel = \"zdt1\"\n[strategy]\nkind = \"random\"\nbudget = 10\n[objectives]\nminimize = [\"f1\", \"f2\"]\n";
    let cases: Vec<(String, &str)> = vec![
        ("name = \"b\"\nmodel = \"zdt1\n".into(), "bad.toml:2:"),
        (base.replace("zdt1", "zdt7"), "unknown model 'zdt7'; valid models: attention.masked, dtlz2, gemv.lowbit, kvcache.pq, modred.barrett, modred.lut, modred.montgomery, pcie.dma, precision.switch, reram.inv, reram.kfac, ring.attention, trivial, zdt1, zdt2, zdt3"),
        (base.replace("[strategy]", "[parameters]\nx99 = 1.0\n[strategy]"), "unknown parameter 'x99' of model 'zdt1'; valid parameters: x1, x2,"),
        (base.replace("\"f2\"]", "\"f9\"]"), "unknown metric 'f9' of model 'zdt1'; valid metrics: f1, f2"),
        (base.replace("\"random\"", "\"bayes\""), "unknown strategy 'bayes'; valid strategies: grid, random, lhs, sobol, nsga2, nsga3, smsemoa"),
        (base.replace("[strategy]", "[parameters]\nx1 = 1.5\n[strategy]"), "bad.toml:4:6: value 1.5 is out of range for parameter 'x1': real in [0, 1]"),
        (base.replace("[strategy]", "[parameters]\nx1 = { min = 0.8, max = 0.2 }\n[strategy]"), "empty range for 'x1'"),
        (base.replace("[strategy]", "[parameters]\nx1 = []\n[strategy]"), "empty list of values for parameter 'x1'"),
        (base.replace("model = \"zdt1\"", "model = \"zdt1\"\nconstraints = [\"f1 <= \"]"), "bad.toml:3:23: in constraint: unexpected end of expression"),
    ];
    for (body, needle) in cases {
        write(p, "bad.toml", &body);
        fails_with(&run_in(p, &["validate", "bad.toml"]), needle);
        fails_with(&run_in(p, &["sweep", "bad.toml", "--out", "o"]), needle);
        assert!(
            !p.join("o").exists(),
            "a failed config must not create outputs"
        );
    }
    fails_with(
        &run_in(p, &["validate", "missing.toml"]),
        "missing.toml: cannot read",
    );
    fails_with(
        &run_in(p, &["sweep", "--shard", "3/2"]),
        "invalid shard '3/2'",
    );
    fails_with(
        &run_in(p, &["sweep", "--threads", "0"]),
        "--threads must be at least 1",
    );
    fails_with(&run_in(p, &["bogus"]), "unrecognized subcommand");
    // A constraint no point can meet: a warning, and the sweep still runs.
    write(
        p,
        "never.toml",
        &base.replace(
            "model = \"zdt1\"",
            "model = \"zdt1\"\nconstraints = [\"f1 > 2\"]",
        ),
    );
    let o = run_in(p, &["sweep", "never.toml", "--out", "never"]);
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("constraint 'f1 > 2' can never be met")
            && err.contains("no evaluated point is feasible"),
        "{err}"
    );
    // An output directory that cannot be created.
    write(p, "file", "x");
    write(p, "ok.toml", base);
    fails_with(
        &run_in(p, &["sweep", "ok.toml", "--out", "file/sub"]),
        "file/sub: cannot use as output directory",
    );
}

#[test]
fn journal_damage_is_tolerated_or_reported_never_overwritten() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(p, "s.toml", "name = \"j\"\nmodel = \"trivial\"\n[strategy]\nkind = \"random\"\nbudget = 300\n[objectives]\nminimize = [\"a\", \"b\"]\n");
    assert!(run_in(p, &["sweep", "s.toml", "--out", "j"])
        .status
        .success());
    let journal = p.join("j/journal.jsonl");
    let full = std::fs::read_to_string(&journal).unwrap();
    // Torn last line: tolerated, the point is evaluated again, the table is whole.
    std::fs::write(&journal, &full[..full.len() - 20]).unwrap();
    let o = run_in(p, &["sweep", "s.toml", "--out", "j"]);
    let (out, err) = text(&o);
    assert!(
        o.status.success()
            && err.contains("incomplete")
            && out.contains("1 evaluated now, 299 from the journal"),
        "{out}{err}"
    );
    // Corruption inside: reported with its line, exit 2, the journal untouched.
    let lines: Vec<&str> = full.lines().collect();
    let bad = format!(
        "{}\n{}\ngarbage\n{}\n",
        lines[0],
        lines[1],
        lines[2..].join("\n")
    );
    std::fs::write(&journal, &bad).unwrap();
    fails_with(
        &run_in(p, &["sweep", "s.toml", "--out", "j"]),
        "journal.jsonl:3: corrupt journal record (no checksum)",
    );
    assert_eq!(std::fs::read_to_string(&journal).unwrap(), bad);
    fails_with(
        &run_in(p, &["report", "j"]),
        "journal.jsonl:3: corrupt journal record",
    );
    // Another study in the same directory is refused.
    std::fs::write(&journal, &full).unwrap();
    write(p, "t.toml", "name = \"j\"\nmodel = \"trivial\"\n[strategy]\nkind = \"random\"\nbudget = 301\n[objectives]\nminimize = [\"a\", \"b\"]\n");
    fails_with(
        &run_in(p, &["sweep", "t.toml", "--out", "j"]),
        "results are never overwritten",
    );
    assert_eq!(std::fs::read_to_string(&journal).unwrap(), full);
}

#[test]
fn pareto_works_on_any_table() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(p, "t.csv", "design,area,latency,accuracy\nA,10,5,0.9\nB,20,3,0.95\nC,30,4,0.80\nD,10,5,0.9\nE,40,1,0.97\nF,,1,0.99\n");
    let o = run_in(
        p,
        &[
            "pareto", "t.csv", "--min", "area", "--min", "latency", "--max", "accuracy",
        ],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(
        out, "row,area,latency,accuracy\n0,10,5,0.9\n3,10,5,0.9\n1,20,3,0.95\n4,40,1,0.97\n",
        "{out}"
    );
    assert!(err.contains("front: 4 of 5 rows; hypervolume"), "{err}");
    // Two objectives with an explicit reference point: the hypervolume is checkable by hand.
    let o = run_in(
        p,
        &[
            "pareto", "t.csv", "--min", "area", "--min", "latency", "--ref", "50,6",
        ],
    );
    let (_, err) = text(&o);
    // Staircase (10,5) (20,3) (40,1) against (50,6): 40*1 + 30*2 + 10*2 = 120.
    assert!(
        err.contains("hypervolume 120 w.r.t. reference (50, 6)"),
        "{err}"
    );
    fails_with(
        &run_in(p, &["pareto", "t.csv", "--min", "area", "--ref", "1,2"]),
        "--ref has 2 values but there are 1 objectives",
    );
    fails_with(
        &run_in(p, &["pareto", "t.csv", "--min", "power"]),
        "no column 'power'; columns: design, area, latency, accuracy",
    );
    fails_with(
        &run_in(p, &["pareto", "t.csv", "--min", "design"]),
        "column 'design' is not numeric",
    );
    fails_with(
        &run_in(p, &["pareto", "t.csv"]),
        "name at least one objective column",
    );
    fails_with(
        &run_in(p, &["pareto", "t.json", "--min", "a"]),
        "unsupported table format",
    );
    fails_with(
        &run_in(p, &["pareto", "nope.csv", "--min", "a"]),
        "nope.csv",
    );
}

#[test]
fn shards_run_separately_and_merge() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(p, "s.toml", "name = \"sh\"\nmodel = \"zdt1\"\nseed = 5\n[strategy]\nkind = \"sobol\"\nbudget = 500\n[objectives]\nminimize = [\"f1\", \"f2\"]\n");
    for i in 0..3 {
        let o = run_in(
            p,
            &[
                "sweep",
                "s.toml",
                "--quiet",
                "--shard",
                &format!("{i}/3"),
                "--out",
                &format!("s{i}"),
            ],
        );
        assert!(o.status.success(), "{:?}", text(&o));
    }
    assert!(run_in(p, &["sweep", "s.toml", "--quiet", "--out", "whole"])
        .status
        .success());
    let o = run_in(p, &["merge", "--out", "merged", "s0", "s1", "s2"]);
    let (out, err) = text(&o);
    assert!(
        o.status.success() && out.contains("merged 500 points (0 duplicates dropped)"),
        "{out}{err}"
    );
    let o = run_in(p, &["merge", "--out", "partial", "s0", "s2"]);
    assert!(text(&o).1.contains("shards [1] are missing"));
    fails_with(
        &run_in(p, &["merge", "--out", "merged", "s0", "s1", "s2"]),
        "already holds a journal",
    );
    let whole = std::fs::read_to_string(p.join("whole/summary.json")).unwrap();
    let merged = std::fs::read_to_string(p.join("merged/summary.json")).unwrap();
    let hv = |s: &str| {
        serde_json::from_str::<serde_json::Value>(s).unwrap()["hypervolume"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(hv(&whole), hv(&merged));
}

/// Journal points of an output directory without timings, sorted: the comparable content.
fn journal_points(dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    let mut pts: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| l.rsplit_once('\t'))
        .map(|(j, _)| serde_json::from_str::<serde_json::Value>(j).unwrap())
        .filter(|v| v["kind"] == "point")
        .map(|mut v| {
            v["t"] = serde_json::Value::Null;
            v
        })
        .collect();
    pts.sort_by_key(|v| v["i"].as_u64());
    pts
}

fn table_without_timing(dir: &Path) -> String {
    let csv = std::fs::read_to_string(dir.join("points.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let drop = header.iter().position(|h| *h == "eval_seconds").unwrap();
    csv.lines()
        .map(|l| {
            l.split(',')
                .enumerate()
                .filter(|(k, _)| *k != drop)
                .map(|(_, f)| f)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Kills a real sweep process with SIGKILL at random moments, resumes each time, and checks the
/// final table equals an uninterrupted run's: no point lost, none duplicated.
#[test]
fn sigkill_at_random_moments_then_resume_gives_the_uninterrupted_result() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let configs = [
        ("random", "name = \"k\"\nmodel = \"zdt1\"\nseed = 3\n[strategy]\nkind = \"random\"\nbudget = 30000\n[objectives]\nminimize = [\"f1\", \"f2\"]\n"),
        ("nsga2", "name = \"k\"\nmodel = \"zdt2\"\nseed = 3\nconstraints = [\"f2 <= 2\"]\n[strategy]\nkind = \"nsga2\"\npopulation = 100\ngenerations = 250\n[objectives]\nminimize = [\"f1\", \"f2\"]\n"),
    ];
    const KILLS: usize = 5;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    for (name, cfg) in configs {
        let file = write(p, &format!("{name}.toml"), cfg);
        let reference = p.join(format!("{name}-ref"));
        let t = Instant::now();
        let status = bin()
            .args([
                "sweep",
                file.to_str().unwrap(),
                "--quiet",
                "--out",
                reference.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let full = t.elapsed();
        let out = p.join(format!("{name}-killed"));
        let mut kills = 0;
        loop {
            let mut child = bin()
                .args([
                    "sweep",
                    file.to_str().unwrap(),
                    "--quiet",
                    "--out",
                    out.to_str().unwrap(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            if kills == KILLS {
                assert!(
                    child.wait().unwrap().success(),
                    "{name}: the resumed run failed"
                );
                break;
            }
            // Random moments in the first 40% of a full run's time: mostly mid-evaluation
            // (tables and report take the rest), sometimes during start-up or the output.
            let wait = Duration::from_secs_f64(rng.random_range(0.03..0.4) * full.as_secs_f64());
            std::thread::sleep(wait);
            if let Ok(Some(status)) = child.try_wait() {
                assert!(status.success(), "{name}: resumed run failed");
                break;
            }
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            kills += 1;
        }
        assert!(
            kills >= 3,
            "{name}: only {kills} kills landed; the run is too short to test"
        );
        // Every kill landed in the middle of a run; the last run finished it.
        let (a, b) = (journal_points(&reference), journal_points(&out));
        let hashes: std::collections::HashSet<&str> =
            b.iter().map(|v| v["h"].as_str().unwrap()).collect();
        assert_eq!(
            hashes.len(),
            b.len(),
            "{name}: duplicated points in the journal"
        );
        assert_eq!(a.len(), b.len(), "{name}: lost or extra points");
        assert_eq!(a, b, "{name}: results differ");
        let (ta, tb) = (table_without_timing(&reference), table_without_timing(&out));
        if let Some((k, (x, y))) = ta
            .lines()
            .zip(tb.lines())
            .enumerate()
            .find(|(_, (x, y))| x != y)
        {
            panic!("{name}: tables differ at line {k}:\n{x}\n{y}");
        }
        assert_eq!(
            ta.lines().count(),
            tb.lines().count(),
            "{name}: table lengths differ"
        );
        eprintln!("{name}: {kills} SIGKILLs, then an identical table");
    }
}

fn run_stdin(dir: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = bin()
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run archsweep");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn modred_reduce_prints_residues_for_every_architecture() {
    let d = tempfile::tempdir().unwrap();
    // q = 1000003 (prime, 20 bits), 40-bit inputs in decimal and hex.
    let q: u64 = 1_000_003;
    let xs: [u64; 6] = [0, 1, q - 1, q, 0xff_ffff_ffff, 0x12_3456_789a];
    let input = format!(
        "{}\n{}\n# a comment\n\n{}\n{}\n0x{:x}\n0X{:X}\n",
        xs[0], xs[1], xs[2], xs[3], xs[4], xs[5]
    );
    let expected: Vec<String> = xs.iter().map(|x| (x % q).to_string()).collect();
    for arch in ["lut", "iter", "hybrid", "barrett", "montgomery"] {
        let o = run_stdin(
            d.path(),
            &[
                "modred",
                "reduce",
                "--modulus",
                "1000003",
                "--width",
                "40",
                "--arch",
                arch,
                "--k",
                "4",
                "--cycles",
                "3",
            ],
            &input,
        );
        let (out, err) = text(&o);
        assert!(o.status.success(), "{arch}: {err}");
        assert_eq!(out.lines().collect::<Vec<_>>(), expected, "{arch}");
    }
    let o = run_stdin(
        d.path(),
        &["modred", "reduce", "-q", "ntt:128", "--hex"],
        "0x100\n",
    );
    assert_eq!(text(&o).0.trim(), "0x100");
}

#[test]
fn modred_bad_input_exits_2() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let reduce = |args: &[&str], stdin: &str| {
        let mut a = vec!["modred", "reduce"];
        a.extend_from_slice(args);
        run_stdin(p, &a, stdin)
    };
    fails_with(
        &reduce(&["-q", "1000000"], "1\n"),
        "the modulus must be odd",
    );
    fails_with(
        &reduce(&["-q", "0x61"], "1\n"),
        "the modulus has 7 bits; it must have 8 to 16384",
    );
    fails_with(&reduce(&["-q", "12x"], "1\n"), "`12x` is not a number");
    fails_with(
        &reduce(&["-q", "ntt:100"], "1\n"),
        "unknown modulus preset `ntt:100`",
    );
    fails_with(
        &reduce(&["-q", "1000003", "--k", "13"], "1\n"),
        "k = 13 is out of range: 1 to 12",
    );
    fails_with(
        &reduce(&["-q", "1000003", "--arch", "magic"], "1\n"),
        "one of lut, iter, hybrid, barrett, montgomery",
    );
    fails_with(
        &reduce(&["-q", "1000003", "--width", "10"], "1\n"),
        "input_bits = 10 is out of range",
    );
    fails_with(
        &reduce(&["-q", "1000003", "--width", "24"], "5\n0x1000000\n"),
        "stdin line 2: input has 25 bits but the reducer's input width is 24",
    );
    fails_with(
        &reduce(&["-q", "1000003"], "12\n0xg1\n"),
        "stdin line 2: `0xg1` is not a number",
    );
    fails_with(
        &reduce(&["-q", "1000003"], "-5\n"),
        "stdin line 1: `-5` is not a number",
    );
    fails_with(
        &run_in(
            p,
            &[
                "rtl", "export", "-q", "1000003", "--arch", "barrett", "--out", "x",
            ],
        ),
        "RTL export covers the table-based designs",
    );
    fails_with(
        &run_in(
            p,
            &[
                "rtl", "export", "-q", "1000003", "--rom", "flash", "--out", "x",
            ],
        ),
        "choose case or memh",
    );
}

#[test]
fn modred_sweep_and_compare() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write(
        d.path(),
        "m.toml",
        r#"name = "m"
model = "modred.lut"
unlisted = "default"
[parameters]
bits = "256"
arch = ["lut", "iter", "hybrid"]
cycles = [2, 4, 8]
lut_share = [0.2, 0.5]
[strategy]
kind = "grid"
[objectives]
minimize = ["area", "latency_ns"]
"#,
    );
    let o = run_in(
        d.path(),
        &["sweep", cfg.to_str().unwrap(), "--out", "out", "--quiet"],
    );
    assert!(o.status.success(), "{}", text(&o).1);
    let o = run_in(d.path(), &["modred", "compare", "out", "--out", "cmp.md"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    for needle in [
        "| lut | 6 |",
        "| iter | 6 |",
        "| hybrid | 3 |",
        "Hybrid / conventional LUT",
        "not published at this width",
        "Area-latency Pareto front, hybrid",
    ] {
        assert!(out.contains(needle), "{needle} missing from:\n{out}");
    }
    // The Markdown file is never overwritten.
    fails_with(
        &run_in(d.path(), &["modred", "compare", "out", "--out", "cmp.md"]),
        "exists",
    );
}

/// Whether the EDA tools are installed; under CI their absence fails the test.
fn eda_tools() -> bool {
    rtl::tools::required_for_tests(&["iverilog", "vvp", "verilator", "yosys", "nextpnr-ice40"])
}

#[test]
fn rtl_export_simulates_and_synth_reports_counts_and_fmax() {
    if !eda_tools() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let o = run_in(
        d.path(),
        &[
            "rtl",
            "export",
            "-q",
            "1000003",
            "--width",
            "40",
            "--arch",
            "hybrid",
            "--cycles",
            "3",
            "--k",
            "4",
            "--out",
            "ex",
            "--vectors",
            "200",
            "--rom",
            "memh",
        ],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("and 213 vectors"), "{out}");
    let ex = d.path().join("ex");
    let sim = Command::new("iverilog")
        .args(["-g2012", "-Wall", "-o", "tb.vvp", "tb.v", "modred.v"])
        .current_dir(&ex)
        .status()
        .unwrap();
    assert!(sim.success());
    let run = Command::new("vvp")
        .args(["-n", "tb.vvp"])
        .current_dir(&ex)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&run.stdout).contains("PASS 213 vectors"));
    // Exporting over an existing design is refused.
    fails_with(
        &run_in(
            d.path(),
            &[
                "rtl", "export", "-q", "1000003", "--width", "40", "--out", "ex",
            ],
        ),
        "nothing is overwritten",
    );
    let o = run_in(
        d.path(),
        &[
            "rtl", "synth", "-q", "1000003", "--width", "40", "--k", "4", "--out", "syn", "--ice40",
        ],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    for needle in [
        "Yosys synth_xilinx",
        "LUT",
        "CARRY4",
        "iCE40: SB_LUT4",
        "nextpnr-ice40 (HX8K): Fmax",
    ] {
        assert!(out.contains(needle), "{needle} missing from:\n{out}");
    }
}

#[test]
fn gpu_regress_flags_slowdowns_and_rejects_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let base = repo("results/gpu/h100/ours.csv");
    let same = run_in(dir.path(), &["gpu", "regress", &base, "--baseline", &base]);
    let (out, err) = text(&same);
    assert_eq!(same.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("no regression over 10%"), "{out}");
    // One measurement 20% slower.
    let text_in = std::fs::read_to_string(&base).unwrap();
    let mut lines: Vec<String> = text_in.lines().map(String::from).collect();
    let i = lines
        .iter()
        .position(|l| l.starts_with("decode_fp16,"))
        .unwrap();
    let mut f: Vec<String> = lines[i].split(',').map(String::from).collect();
    let t: f64 = f[13].parse().unwrap();
    f[13] = format!("{:.3}", t * 1.2);
    lines[i] = f.join(",");
    let slow = write(dir.path(), "slow.csv", &(lines.join("\n") + "\n"));
    let o = run_in(
        dir.path(),
        &[
            "gpu",
            "regress",
            slow.to_str().unwrap(),
            "--baseline",
            &base,
        ],
    );
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("SLOWER") && out.contains("decode_fp16") && out.contains("1 regressions"),
        "{out}"
    );
    let bad = write(
        dir.path(),
        "bad.csv",
        &text_in
            .replacen("attention,dense", "attention,dense,extra", 1)
            .replace(",1352.", ",fast"),
    );
    fails_with(
        &run_in(
            dir.path(),
            &["gpu", "regress", bad.to_str().unwrap(), "--baseline", &base],
        ),
        "bad.csv: line",
    );
    fails_with(
        &run_in(dir.path(), &["gpu", "regress", &base, "--threshold=0"]),
        "--threshold",
    );
    fails_with(
        &run_in(
            dir.path(),
            &["gpu", "regress", "missing.csv", "--baseline", &base],
        ),
        "missing.csv",
    );
    // lowbitbench runs are told apart by their header and compared row by row too.
    let lb = repo("results/gpu/lowbit_h100/ours.csv");
    let lb_text = std::fs::read_to_string(&lb).unwrap();
    // The first selected row, made 30% slower.
    let mut key = String::new();
    let slow: Vec<String> = lb_text
        .lines()
        .map(|l| {
            let mut f: Vec<String> = l.split(',').map(str::to_string).collect();
            if key.is_empty() && f.len() > 6 && f[5] == "true" {
                key = format!("lowbit {} {}x{} batch {} {}", f[0], f[1], f[2], f[3], f[4]);
                let t: f64 = f[6].parse().unwrap();
                f[6] = format!("{:.3}", t * 1.3);
            }
            f.join(",")
        })
        .collect();
    assert!(!key.is_empty());
    let slow = write(dir.path(), "lowbit_slow.csv", &(slow.join("\n") + "\n"));
    let o = run_in(
        dir.path(),
        &["gpu", "regress", slow.to_str().unwrap(), "--baseline", &lb],
    );
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("SLOWER") && out.contains(&key), "{out}");
    fails_with(
        &run_in(
            dir.path(),
            &[
                "gpu",
                "regress",
                slow.to_str().unwrap(),
                "--baseline",
                &base,
            ],
        ),
        "missing column",
    );
}

#[test]
fn gpu_pq_accuracy_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let out = write(dir.path(), "acc.csv", "keep me\n");
    fails_with(
        &run_in(
            dir.path(),
            &["gpu", "pq-accuracy", "--out", out.to_str().unwrap()],
        ),
        "never overwritten",
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me\n");
}

#[test]
fn reram_commands_run_and_reject_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let o = run_in(d.path(), &["reram", "isaac"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("| tile power (mW) | 329.") && out.contains("-0.08%"),
        "{out}"
    );
    let o = run_in(
        d.path(),
        &[
            "reram",
            "precision",
            "--n",
            "16",
            "--trials",
            "1",
            "--rounds",
            "3",
            "--kappa",
            "1,10",
            "--out",
            "p",
        ],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("| refine | ideal | 1e0 | 1/1 |"), "{out}");
    for f in ["precision.csv", "precision.md", "bits.svg", "bits.png"] {
        assert!(d.path().join("p").join(f).exists(), "{f}");
    }
    fails_with(
        &run_in(d.path(), &["reram", "precision", "--out", "p"]),
        "results are never overwritten",
    );
    fails_with(
        &run_in(
            d.path(),
            &["reram", "train", "--net", "resnet", "--out", "t"],
        ),
        "choose mlp or cnn",
    );
    fails_with(
        &run_in(
            d.path(),
            &["reram", "train", "--noise", "loud", "--out", "t"],
        ),
        "ideal, default, 3x, 10x",
    );
    let tech = std::fs::read_to_string(repo("sim/src/reram/isaac32.toml")).unwrap();
    std::fs::write(
        d.path().join("neg.toml"),
        tech.replace("r_on_ohm = 100e3", "r_on_ohm = -1"),
    )
    .unwrap();
    fails_with(
        &run_in(d.path(), &["--tech", "neg.toml", "list"]),
        "neg.toml: field `cell.r_on_ohm` must be a positive number",
    );
    std::fs::write(
        d.path().join("key.toml"),
        tech.replace("[dac]", "[dac]\nvolts = 1"),
    )
    .unwrap();
    fails_with(
        &run_in(d.path(), &["reram", "tech", "key.toml"]),
        "unknown field `volts`",
    );
    fails_with(&run_in(d.path(), &["reram", "tech", "key.toml"]), "line");
    let o = run_in(
        d.path(),
        &[
            "--tech",
            &repo("sim/src/reram/isaac32.toml"),
            "list",
            "reram.inv",
        ],
    );
    assert!(o.status.success(), "{}", text(&o).1);
    let cfg = std::fs::read_to_string(repo("configs/reram_inv.toml")).unwrap();
    std::fs::write(
        d.path().join("bad.toml"),
        cfg.replace("level_bits = { min = 4, max = 10 }", "level_bits = 0"),
    )
    .unwrap();
    fails_with(&run_in(d.path(), &["validate", "bad.toml"]), "level_bits");
}

#[test]
fn pcie_traces_simulate_validate_generate_and_reject_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let o = run_in(
        d.path(),
        &[
            "pcie",
            "simulate",
            "--set",
            "workload=nic",
            "--set",
            "ops=400",
            "--trace",
            "nic.csv",
        ],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(
        out.contains("Gb/s payload") && out.contains("latency ns: p50"),
        "{out}"
    );
    // Never overwritten.
    let again = run_in(
        d.path(),
        &[
            "pcie",
            "simulate",
            "--set",
            "workload=nic",
            "--trace",
            "nic.csv",
        ],
    );
    fails_with(&again, "never overwritten");
    let o = run_in(d.path(), &["pcie", "validate", "nic.csv"]);
    let (out, err) = text(&o);
    assert!(
        o.status.success() && out.contains(" 0 violations"),
        "{out}{err}"
    );
    for flag in [None, Some("--unconstrained")] {
        let name = if flag.is_some() {
            "free.csv"
        } else {
            "gen.csv"
        };
        let mut args = vec![
            "pcie",
            "generate",
            "--reference",
            "nic.csv",
            "--rows",
            "5000",
            "--out",
            name,
        ];
        args.extend(flag);
        let o = run_in(d.path(), &args);
        assert!(o.status.success(), "{:?}", text(&o));
        let v = run_in(d.path(), &["pcie", "validate", name]);
        let want = if flag.is_some() { Some(1) } else { Some(0) };
        assert_eq!(v.status.code(), want, "{name}: {:?}", text(&v));
    }
    let o = run_in(
        d.path(),
        &[
            "pcie",
            "fidelity",
            "--reference",
            "nic.csv",
            "gen.csv",
            "free.csv",
        ],
    );
    let (out, _) = text(&o);
    assert!(
        o.status.success() && out.contains("| gen.csv | 5000 |"),
        "{out}"
    );
    // Malformed traces: the line and what is wrong, exit 2.
    let good = std::fs::read_to_string(d.path().join("nic.csv")).unwrap();
    let mut lines: Vec<String> = good.lines().map(String::from).collect();
    let header = lines.iter().position(|l| l.starts_with("time_ns")).unwrap();
    let cases = [
        (
            header + 3,
            "5.0,up,MRd,0x10,64".to_string(),
            format!("bad.csv:{}: 5 columns", header + 4),
        ),
        (
            header + 3,
            "9e12,up,MRx,0x10,64,0,0,0,0,0,0".to_string(),
            "type `MRx`; choose one of MRd".to_string(),
        ),
        (
            header + 3,
            "0.0,up,MRd,0x10,64,0,0,0,0,0,0".to_string(),
            format!("bad.csv:{}: time_ns 0 is earlier", header + 4),
        ),
        (
            header,
            "time,dir,type".to_string(),
            "expected the header".to_string(),
        ),
    ];
    for (i, (at, row, needle)) in cases.into_iter().enumerate() {
        let keep = lines[at].clone();
        lines[at] = row;
        write(d.path(), "bad.csv", &(lines.join("\n") + "\n"));
        fails_with(&run_in(d.path(), &["pcie", "validate", "bad.csv"]), &needle);
        lines[at] = keep;
        let _ = i;
    }
    fails_with(
        &run_in(d.path(), &["pcie", "validate", "missing.csv"]),
        "opening missing.csv",
    );
    fails_with(
        &run_in(d.path(), &["pcie", "simulate", "--set", "mps=100"]),
        "mps",
    );
    // A violation is reported with its line and rule, exit 1.
    let data_row = lines.iter().position(|l| l.contains(",CplD,")).unwrap();
    let mut cols: Vec<String> = lines[data_row].split(',').map(String::from).collect();
    cols[9] = "9999".into();
    lines[data_row] = cols.join(",");
    write(d.path(), "viol.csv", &(lines.join("\n") + "\n"));
    let o = run_in(d.path(), &["pcie", "validate", "viol.csv"]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!("viol.csv:{}: [byte-count]", data_row + 1)),
        "{out}"
    );
}

#[test]
fn pcie_traces_in_parquet_round_trip_validate_and_reject_bad_files() {
    use polars::prelude::{Column, DataFrame, ParquetWriter};
    let d = tempfile::tempdir().unwrap();
    let sim = |name: &str| {
        run_in(
            d.path(),
            &[
                "pcie",
                "simulate",
                "--set",
                "workload=nic",
                "--set",
                "ops=300",
                "--trace",
                name,
            ],
        )
    };
    for name in ["nic.csv", "nic.parquet"] {
        let o = sim(name);
        assert!(o.status.success(), "{:?}", text(&o));
    }
    // CSV -> Parquet -> CSV gives the same file; Parquet keeps the metadata lines.
    for (from, to) in [("nic.csv", "a.parquet"), ("a.parquet", "back.csv")] {
        let o = run_in(d.path(), &["pcie", "convert", from, to]);
        assert!(o.status.success(), "{:?}", text(&o));
    }
    let csv = std::fs::read_to_string(d.path().join("nic.csv")).unwrap();
    assert!(csv.contains("# nic bar0="));
    assert_eq!(
        csv,
        std::fs::read_to_string(d.path().join("back.csv")).unwrap()
    );
    fails_with(
        &run_in(d.path(), &["pcie", "convert", "nic.csv", "a.parquet"]),
        "never overwritten",
    );
    for name in ["nic.parquet", "a.parquet"] {
        let o = run_in(d.path(), &["pcie", "validate", name]);
        let (out, err) = text(&o);
        assert!(
            o.status.success() && out.contains(" 0 violations"),
            "{out}{err}"
        );
    }
    // Generation from and into Parquet.
    let o = run_in(
        d.path(),
        &[
            "pcie",
            "generate",
            "--reference",
            "nic.parquet",
            "--rows",
            "3000",
            "--out",
            "gen.parquet",
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let o = run_in(d.path(), &["pcie", "validate", "gen.parquet"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    // A violation is reported with its row and rule, exit 1.
    let lines: Vec<String> = csv.lines().map(String::from).collect();
    let header = lines.iter().position(|l| l.starts_with("time_ns")).unwrap();
    let at = lines.iter().position(|l| l.contains(",CplD,")).unwrap();
    let mut bad = lines.clone();
    let mut cols: Vec<String> = bad[at].split(',').map(String::from).collect();
    cols[9] = "9999".into();
    bad[at] = cols.join(",");
    write(d.path(), "viol.csv", &(bad.join("\n") + "\n"));
    let o = run_in(d.path(), &["pcie", "convert", "viol.csv", "viol.parquet"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = run_in(d.path(), &["pcie", "validate", "viol.parquet"]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!("viol.parquet: row {}: [byte-count]", at - header)),
        "{out}"
    );
    // Malformed Parquet files: what is wrong and where, exit 2.
    let frame = |dir: Vec<&str>, drop_tag: bool, time: Vec<f64>| {
        let n = dir.len();
        let mut cols = vec![
            Column::new("time_ns".into(), time),
            Column::new("dir".into(), dir),
            Column::new("type".into(), vec!["MWr"; n]),
            Column::new("address".into(), vec![0x1000u64; n]),
        ];
        for c in [
            "length",
            "requester",
            "tag",
            "attr",
            "tc",
            "byte_count",
            "lower_addr",
        ] {
            if !(drop_tag && c == "tag") {
                let v = if c == "length" { 64 } else { 0 };
                cols.push(Column::new(c.into(), vec![v as i64; n]));
            }
        }
        DataFrame::new(n, cols).unwrap()
    };
    let cases = [
        (
            "dir.parquet",
            frame(vec!["up", "up", "sideways"], false, vec![1.0, 2.0, 3.0]),
            "dir.parquet: row 3: dir `sideways`; choose up or down",
        ),
        (
            "tag.parquet",
            frame(vec!["up"; 3], true, vec![1.0, 2.0, 3.0]),
            "no column `tag`",
        ),
        (
            "time.parquet",
            frame(vec!["up"; 3], false, vec![1.0, 5.0, 3.0]),
            "row 3: time_ns 3 is earlier than the previous row's 5",
        ),
    ];
    for (name, mut df, needle) in cases {
        let f = std::fs::File::create(d.path().join(name)).unwrap();
        ParquetWriter::new(f).finish(&mut df).unwrap();
        fails_with(&run_in(d.path(), &["pcie", "validate", name]), needle);
    }
    // An integer frame without the trace's metadata validates against the specification's
    // maxima.
    let mut ok = frame(vec!["up"; 3], false, vec![1.0, 2.0, 3.0]);
    let f = std::fs::File::create(d.path().join("plain.parquet")).unwrap();
    ParquetWriter::new(f).finish(&mut ok).unwrap();
    let o = run_in(d.path(), &["pcie", "validate", "plain.parquet"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    // A conversion that meets a malformed row fails and leaves no half-written file.
    let mut broken = lines.clone();
    broken[at] = broken[at]
        .replacen(",down,", ",sideways,", 1)
        .replacen(",up,", ",sideways,", 1);
    write(d.path(), "broken.csv", &(broken.join("\n") + "\n"));
    fails_with(
        &run_in(
            d.path(),
            &["pcie", "convert", "broken.csv", "broken.parquet"],
        ),
        "dir `sideways`",
    );
    assert!(!d.path().join("broken.parquet").exists());
    std::fs::copy(d.path().join("nic.csv"), d.path().join("csv.parquet")).unwrap();
    fails_with(
        &run_in(d.path(), &["pcie", "validate", "csv.parquet"]),
        "csv.parquet: not a Parquet file",
    );
}

#[test]
fn lowbit_accuracy_names_missing_or_bad_weights() {
    let d = tempfile::tempdir().unwrap();
    fails_with(
        &run_in(
            d.path(),
            &["lowbit", "accuracy", "--weights", "missing.safetensors"],
        ),
        "reading missing.safetensors (scripts/fetch_minilm.sh fetches the weights)",
    );
    write(d.path(), "bad.safetensors", "not a safetensors file");
    fails_with(
        &run_in(
            d.path(),
            &["lowbit", "accuracy", "--weights", "bad.safetensors"],
        ),
        "MiniLM weights",
    );
}

#[test]
fn lowbit_commands_reject_bad_arguments_before_working() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    fails_with(
        &run_in(p, &["lowbit", "switch", "--context", "0"]),
        "--context 0",
    );
    let o = run_in(p, &["lowbit", "switch", "--decoder", "gpt-5"]);
    let (_, err) = text(&o);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        err.contains("llama-7b") && err.contains("llama-70b"),
        "{err}"
    );
    // Existing outputs are refused before the study runs, and left as they were.
    let csv = write(p, "acc.csv", "mine");
    fails_with(
        &run_in(p, &["lowbit", "accuracy", "--csv", csv.to_str().unwrap()]),
        "never overwritten",
    );
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), "mine");
    fails_with(
        &run_in(p, &["lowbit", "switch", "--weights", "missing.safetensors"]),
        "missing.safetensors",
    );
}
