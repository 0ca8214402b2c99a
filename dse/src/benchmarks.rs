//! Standard multi-objective test problems (ZDT1-3, DTLZ2) with their known Pareto fronts, and a
//! trivial model for measuring engine overhead. They test the engine, not any hardware.

use std::f64::consts::PI;
use std::sync::Arc;

use crate::model::{
    Direction, EvalContext, MetricSpec, Model, ModelError, ModelInfo, ParamSpec, Value,
};

/// Which test problem a [`Benchmark`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// ZDT1: convex front f2 = 1 - sqrt(f1).
    Zdt1,
    /// ZDT2: concave front f2 = 1 - f1^2.
    Zdt2,
    /// ZDT3: disconnected front f2 = 1 - sqrt(f1) - f1 sin(10 pi f1).
    Zdt3,
    /// DTLZ2 with 3 objectives: front is the positive octant of the unit sphere.
    Dtlz2,
}

/// A benchmark problem as a design model.
pub struct Benchmark {
    problem: Problem,
    info: ModelInfo,
}

impl Benchmark {
    /// The problem with its standard number of variables (30 for ZDT, 12 for DTLZ2).
    pub fn new(problem: Problem) -> Self {
        let (name, n, m, summary) = match problem {
            Problem::Zdt1 => (
                "zdt1",
                30,
                2,
                "ZDT1 test problem: 30 variables, convex front",
            ),
            Problem::Zdt2 => (
                "zdt2",
                30,
                2,
                "ZDT2 test problem: 30 variables, concave front",
            ),
            Problem::Zdt3 => (
                "zdt3",
                30,
                2,
                "ZDT3 test problem: 30 variables, disconnected front",
            ),
            Problem::Dtlz2 => (
                "dtlz2",
                12,
                3,
                "DTLZ2 test problem: 12 variables, 3 objectives, spherical front",
            ),
        };
        let params = (1..=n)
            .map(|i| {
                ParamSpec::real(
                    &format!("x{i}"),
                    0.0,
                    1.0,
                    0.5,
                    "",
                    &format!("decision variable {i}"),
                )
            })
            .collect();
        let metrics = (1..=m)
            .map(|j| {
                let spec = MetricSpec::new(
                    &format!("f{j}"),
                    "",
                    Direction::Minimize,
                    &format!("objective {j}"),
                );
                match problem {
                    // f1 = x1 on ZDT; DTLZ2 objectives lie in [0, 1 + g] with g <= k/4.
                    Problem::Zdt1 | Problem::Zdt2 | Problem::Zdt3 if j == 1 => {
                        spec.bounded(0.0, 1.0)
                    }
                    Problem::Dtlz2 => spec.bounded(0.0, 1.0 + (n - m + 1) as f64 / 4.0),
                    _ => spec,
                }
            })
            .collect();
        let info = ModelInfo {
            name: name.to_string(),
            version: "1".to_string(),
            summary: summary.to_string(),
            params,
            metrics,
        };
        Benchmark { problem, info }
    }

    /// Evaluates the problem on plain reals.
    pub fn objectives(&self, x: &[f64]) -> Vec<f64> {
        match self.problem {
            Problem::Zdt1 | Problem::Zdt2 | Problem::Zdt3 => {
                let n = x.len() as f64;
                let f1 = x[0];
                let g = 1.0 + 9.0 * x[1..].iter().sum::<f64>() / (n - 1.0);
                let r = f1 / g;
                let h = match self.problem {
                    Problem::Zdt1 => 1.0 - r.sqrt(),
                    Problem::Zdt2 => 1.0 - r * r,
                    _ => 1.0 - r.sqrt() - r * (10.0 * PI * f1).sin(),
                };
                vec![f1, g * h]
            }
            Problem::Dtlz2 => {
                let m = self.info.metrics.len();
                let g: f64 = x[m - 1..].iter().map(|v| (v - 0.5) * (v - 0.5)).sum();
                (0..m)
                    .map(|j| {
                        let mut f = 1.0 + g;
                        for &xi in &x[..m - 1 - j] {
                            f *= (xi * PI / 2.0).cos();
                        }
                        if j > 0 {
                            f *= (x[m - 1 - j] * PI / 2.0).sin();
                        }
                        f
                    })
                    .collect()
            }
        }
    }

    /// `n` points of the true Pareto front (non-dominated, objective space).
    pub fn true_front(&self, n: usize) -> Vec<Vec<f64>> {
        match self.problem {
            Problem::Zdt1 | Problem::Zdt2 | Problem::Zdt3 => {
                let mut x = vec![0.0; self.info.params.len()];
                let pts: Vec<Vec<f64>> = (0..n)
                    .map(|i| {
                        x[0] = i as f64 / (n - 1) as f64;
                        self.objectives(&x)
                    })
                    .collect();
                // ZDT3's curve has dominated stretches: keep only the non-dominated part.
                crate::pareto::nondominated(&pts)
                    .into_iter()
                    .map(|i| pts[i].clone())
                    .collect()
            }
            Problem::Dtlz2 => {
                // A grid on the two angles of the sphere octant.
                let side = (n as f64).sqrt().ceil() as usize;
                let mut out = Vec::with_capacity(side * side);
                for a in 0..side {
                    for b in 0..side {
                        let t = a as f64 / (side - 1) as f64 * PI / 2.0;
                        let p = b as f64 / (side - 1) as f64 * PI / 2.0;
                        out.push(vec![t.cos() * p.cos(), t.cos() * p.sin(), t.sin()]);
                    }
                }
                out
            }
        }
    }

    /// The hypervolume of the true (continuous) front with respect to `reference`, computed in
    /// closed form (ZDT1, ZDT2, DTLZ2) or from a dense sample of the front (ZDT3).
    pub fn true_front_hypervolume(&self, reference: &[f64]) -> f64 {
        match self.problem {
            // Dominated area: int_0^1 (r2 - f2(f1)) df1 + (r1 - 1) r2, valid for r >= (1, 1).
            Problem::Zdt1 => (reference[1] - 1.0 + 2.0 / 3.0) + (reference[0] - 1.0) * reference[1],
            Problem::Zdt2 => (reference[1] - 1.0 + 1.0 / 3.0) + (reference[0] - 1.0) * reference[1],
            // The dominated volume is the box minus the unit-sphere octant (valid for r >= 1).
            Problem::Dtlz2 => reference.iter().product::<f64>() - PI / 6.0,
            Problem::Zdt3 => crate::hypervolume::hypervolume(&self.true_front(200_001), reference),
        }
    }
}

impl Model for Benchmark {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn evaluate(&self, point: &[Value], _ctx: &EvalContext) -> Result<Vec<f64>, ModelError> {
        let x: Vec<f64> = point
            .iter()
            .map(|v| {
                v.as_f64()
                    .ok_or_else(|| ModelError::Failed("non-numeric input".into()))
            })
            .collect::<Result<_, _>>()?;
        Ok(self.objectives(&x))
    }
}

/// A near-free model (two reals in, two metrics out) for measuring the engine's own overhead.
pub struct Trivial {
    info: ModelInfo,
}

impl Default for Trivial {
    fn default() -> Self {
        Trivial {
            info: ModelInfo {
                name: "trivial".to_string(),
                version: "1".to_string(),
                summary: "Near-free model (a = x, b = 1 - x + y) for measuring engine overhead"
                    .to_string(),
                params: vec![
                    ParamSpec::real("x", 0.0, 1.0, 0.5, "", "first input"),
                    ParamSpec::real("y", 0.0, 1.0, 0.5, "", "second input"),
                ],
                metrics: vec![
                    MetricSpec::new("a", "", Direction::Minimize, "equals x").bounded(0.0, 1.0),
                    MetricSpec::new("b", "", Direction::Minimize, "1 - x + y").bounded(0.0, 2.0),
                ],
            },
        }
    }
}

impl Model for Trivial {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn evaluate(&self, point: &[Value], _ctx: &EvalContext) -> Result<Vec<f64>, ModelError> {
        match point {
            [Value::Real(x), Value::Real(y)] => Ok(vec![*x, 1.0 - x + y]),
            _ => Err(ModelError::Failed("expected two reals".into())),
        }
    }
}

/// All engine benchmark models, ready to register.
pub fn all() -> Vec<Arc<dyn Model>> {
    vec![
        Arc::new(Benchmark::new(Problem::Zdt1)),
        Arc::new(Benchmark::new(Problem::Zdt2)),
        Arc::new(Benchmark::new(Problem::Zdt3)),
        Arc::new(Benchmark::new(Problem::Dtlz2)),
        Arc::new(Trivial::default()),
    ]
}
