use dse::expr::Constraint;

fn bound(text: &str, names: &[&str]) -> Constraint {
    let mut c = Constraint::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    c.bind(&|n: &str| names.iter().position(|x| *x == n))
        .unwrap();
    c
}

#[test]
fn comparisons_and_combinations() {
    let names = ["latency_cycles", "area_luts"];
    let c = bound("latency_cycles <= 200 and area_luts < 5e4", &names);
    assert_eq!(c.violation(&[200.0, 49_999.0]), 0.0);
    assert!(c.violation(&[201.0, 10.0]) > 0.0);
    assert!(
        c.violation(&[10.0, 50_000.0]) > 0.0,
        "strict < must fail at equality"
    );
    // Relative violations add up: (300-200)/200 + (1e5-5e4)/5e4 = 0.5 + 1.
    assert!((c.violation(&[300.0, 1e5]) - 1.5).abs() < 1e-12);
    let c = bound("latency_cycles > 10 || area_luts >= 2 * 3 ^ 2", &names);
    assert_eq!(c.violation(&[0.0, 18.0]), 0.0);
    assert!(c.violation(&[0.0, 17.0]) > 0.0);
    let c = bound(
        "(latency_cycles < 1 or latency_cycles > 5) and max(area_luts, 2) <= sqrt(16) - -1",
        &names,
    );
    assert_eq!(c.violation(&[6.0, 5.0]), 0.0);
    assert!(c.violation(&[3.0, 5.0]) > 0.0);
    assert!(c.violation(&[6.0, 6.0]) > 0.0);
    let c = bound("log10(area_luts) + 1_000 * 0 <= 3", &names);
    assert_eq!(c.violation(&[0.0, 1000.0]), 0.0);
}

#[test]
fn nan_counts_as_violated() {
    let c = bound("a <= 1", &["a"]);
    assert!(c.violation(&[f64::NAN]).is_infinite());
}

#[test]
fn parse_errors_point_at_the_problem() {
    for (text, offset, needle) in [
        ("latency <= ", 11, "end of expression"),
        ("latency + 3", 11, "comparison"),
        ("latency == 3", 8, "not supported"),
        ("latency <= foo(3)", 11, "unknown function"),
        ("latency <= 3 $", 13, "unexpected character"),
        ("(latency <= 3", 13, "')'"),
        ("max(a) < 2", 0, "takes 2"),
    ] {
        let e = Constraint::parse(text).expect_err(text);
        assert_eq!(e.offset, offset, "{text}: {e}");
        assert!(e.message.contains(needle), "{text}: {e}");
    }
}

#[test]
fn interval_analysis_finds_impossible_constraints() {
    let c = bound("a + b > 3", &["a", "b"]);
    assert!(!c.satisfiable(&[(0.0, 1.0), (0.0, 1.0)]));
    assert!(c.satisfiable(&[(0.0, 2.0), (0.0, 2.0)]));
    let c = bound("a * b <= -1 or a >= 0.5", &["a", "b"]);
    assert!(!c.satisfiable(&[(0.0, 0.4), (0.0, 1.0)]));
    assert!(c.satisfiable(&[(f64::NEG_INFINITY, f64::INFINITY), (0.0, 1.0)]));
}
