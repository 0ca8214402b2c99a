//! The design-model interface: what a model declares (parameters, metrics) and how it is
//! evaluated, plus the registry that finds models by name.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// The kind and full domain of one model parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamKind {
    /// An integer in `[min, max]` (inclusive).
    Int {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// A real number in `[min, max]`, sampled and searched on a log scale when `log` is set.
    Real {
        /// Smallest allowed value.
        min: f64,
        /// Largest allowed value.
        max: f64,
        /// Whether the natural scale of the parameter is logarithmic (then `min > 0`).
        log: bool,
    },
    /// One of a fixed set of names.
    Categorical {
        /// The allowed names, in declaration order.
        choices: Vec<String>,
    },
    /// `true` or `false`.
    Bool,
}

/// One parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Integer value.
    Int(i64),
    /// Real value.
    Real(f64),
    /// Categorical value (one of the declared choices).
    Cat(String),
    /// Boolean value.
    Bool(bool),
}

impl Value {
    /// The value as a number: integers and reals as themselves, booleans as 0/1; categoricals
    /// have none.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Real(x) => Some(*x),
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Value::Cat(_) => None,
        }
    }

    /// The value's type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "integer",
            Value::Real(_) => "real",
            Value::Cat(_) => "string",
            Value::Bool(_) => "boolean",
        }
    }
}

/// Values are written to JSON as plain numbers, strings and booleans; reals always carry a
/// decimal point or exponent, so integers and reals read back as what they were.
impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Int(i) => s.serialize_i64(*i),
            Value::Real(x) => s.serialize_f64(*x),
            Value::Cat(c) => s.serialize_str(c),
            Value::Bool(b) => s.serialize_bool(*b),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, string or boolean")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
                i64::try_from(v)
                    .map(Value::Int)
                    .map_err(|_| E::custom("integer out of range"))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
                Ok(Value::Real(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Cat(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Real(x) => write!(f, "{x}"),
            Value::Cat(s) => write!(f, "{s}"),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// A declared model parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// Identifier used in sweep files and result tables.
    pub name: String,
    /// Kind and full domain.
    pub kind: ParamKind,
    /// Value used when a sweep fixes the parameter at its default.
    pub default: Value,
    /// Unit ("" when dimensionless).
    pub unit: String,
    /// One-line description.
    pub doc: String,
}

impl ParamSpec {
    /// An integer parameter.
    pub fn int(name: &str, min: i64, max: i64, default: i64, unit: &str, doc: &str) -> Self {
        Self::new(
            name,
            ParamKind::Int { min, max },
            Value::Int(default),
            unit,
            doc,
        )
    }
    /// A real parameter on a linear scale.
    pub fn real(name: &str, min: f64, max: f64, default: f64, unit: &str, doc: &str) -> Self {
        let kind = ParamKind::Real {
            min,
            max,
            log: false,
        };
        Self::new(name, kind, Value::Real(default), unit, doc)
    }
    /// A real parameter on a log scale (`min > 0`).
    pub fn log_real(name: &str, min: f64, max: f64, default: f64, unit: &str, doc: &str) -> Self {
        let kind = ParamKind::Real {
            min,
            max,
            log: true,
        };
        Self::new(name, kind, Value::Real(default), unit, doc)
    }
    /// A categorical parameter.
    pub fn categorical(name: &str, choices: &[&str], default: &str, doc: &str) -> Self {
        let choices = choices.iter().map(|c| c.to_string()).collect();
        let kind = ParamKind::Categorical { choices };
        Self::new(name, kind, Value::Cat(default.to_string()), "", doc)
    }
    /// A boolean parameter.
    pub fn boolean(name: &str, default: bool, doc: &str) -> Self {
        Self::new(name, ParamKind::Bool, Value::Bool(default), "", doc)
    }
    fn new(name: &str, kind: ParamKind, default: Value, unit: &str, doc: &str) -> Self {
        ParamSpec {
            name: name.to_string(),
            kind,
            default,
            unit: unit.to_string(),
            doc: doc.to_string(),
        }
    }

    /// `v` converted to this parameter's type where that is lossless (an integer for a real
    /// parameter), else unchanged.
    pub fn conform(&self, v: Value) -> Value {
        match (&self.kind, v) {
            (ParamKind::Real { .. }, Value::Int(i)) => Value::Real(i as f64),
            (_, v) => v,
        }
    }

    /// Whether `v` lies in the declared domain.
    pub fn admits(&self, v: &Value) -> bool {
        match (&self.kind, v) {
            (ParamKind::Int { min, max }, Value::Int(i)) => min <= i && i <= max,
            (ParamKind::Real { min, max, .. }, Value::Real(x)) => *min <= *x && *x <= *max,
            (ParamKind::Categorical { choices }, Value::Cat(s)) => choices.contains(s),
            (ParamKind::Bool, Value::Bool(_)) => true,
            _ => false,
        }
    }

    /// A short human description of the domain, e.g. `integer in [1, 64]`.
    pub fn domain_text(&self) -> String {
        match &self.kind {
            ParamKind::Int { min, max } => format!("integer in [{min}, {max}]"),
            ParamKind::Real { min, max, log } => {
                format!(
                    "real in [{min}, {max}]{}",
                    if *log { ", log scale" } else { "" }
                )
            }
            ParamKind::Categorical { choices } => format!("one of {}", choices.join(", ")),
            ParamKind::Bool => "true or false".to_string(),
        }
    }
}

/// Which way a metric is usually optimised (a hint for reports; sweeps choose objectives).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Smaller is better (area, latency, energy, error).
    Minimize,
    /// Larger is better (accuracy, throughput).
    Maximize,
    /// No natural direction.
    Neutral,
}

/// A declared model output.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSpec {
    /// Identifier used in sweep files, constraints and result tables.
    pub name: String,
    /// Unit ("" when dimensionless).
    pub unit: String,
    /// Usual optimisation direction.
    pub direction: Direction,
    /// Known bounds of the metric over the model's whole domain, when the model can state them;
    /// used to warn about constraints no point can meet.
    pub bounds: Option<(f64, f64)>,
    /// One-line description.
    pub doc: String,
}

impl MetricSpec {
    /// A metric with no known bounds.
    pub fn new(name: &str, unit: &str, direction: Direction, doc: &str) -> Self {
        MetricSpec {
            name: name.to_string(),
            unit: unit.to_string(),
            direction,
            bounds: None,
            doc: doc.to_string(),
        }
    }
    /// The same metric with known bounds.
    pub fn bounded(mut self, lo: f64, hi: f64) -> Self {
        self.bounds = Some((lo, hi));
        self
    }
}

/// Everything a model declares about itself.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// Registry name (lowercase, dots allowed: `zdt1`, `gemv.lowbit`).
    pub name: String,
    /// Version; results are keyed by it, so bump it whenever outputs change.
    pub version: String,
    /// One-line summary for `archsweep list`.
    pub summary: String,
    /// Parameters, in the order `evaluate` receives them.
    pub params: Vec<ParamSpec>,
    /// Metrics, in the order `evaluate` returns them.
    pub metrics: Vec<MetricSpec>,
}

impl ModelInfo {
    /// Index of the parameter called `name`.
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }
    /// Index of the metric called `name`.
    pub fn metric_index(&self, name: &str) -> Option<usize> {
        self.metrics.iter().position(|m| m.name == name)
    }
    /// The default point with `overrides` (`name=value` pairs as typed on a command line)
    /// applied; an unknown name or a value outside the domain is an error naming the parameter
    /// and what it accepts.
    pub fn point_with(&self, overrides: &[String]) -> Result<Vec<Value>, String> {
        let mut point: Vec<Value> = self.params.iter().map(|p| p.default.clone()).collect();
        for o in overrides {
            let (name, text) = o
                .split_once('=')
                .ok_or_else(|| format!("`{o}`: write NAME=VALUE"))?;
            let i = self.param_index(name.trim()).ok_or_else(|| {
                format!(
                    "{}: no parameter `{}` (parameters: {})",
                    self.name,
                    name.trim(),
                    self.param_names()
                )
            })?;
            let spec = &self.params[i];
            let text = text.trim();
            let v = match &spec.kind {
                ParamKind::Int { .. } => text.parse::<i64>().ok().map(Value::Int),
                ParamKind::Real { .. } => text.parse::<f64>().ok().map(Value::Real),
                ParamKind::Categorical { .. } => Some(Value::Cat(text.to_string())),
                ParamKind::Bool => text.parse::<bool>().ok().map(Value::Bool),
            }
            .filter(|v| spec.admits(v))
            .ok_or_else(|| format!("{}: `{text}` is not {}", spec.name, spec.domain_text()))?;
            point[i] = v;
        }
        Ok(point)
    }
    /// Comma-separated parameter names (for error messages).
    pub fn param_names(&self) -> String {
        self.params
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
    /// Comma-separated metric names (for error messages).
    pub fn metric_names(&self) -> String {
        self.metrics
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What a model evaluation knows besides the point.
#[derive(Debug, Clone, Copy)]
pub struct EvalContext {
    /// The study seed; stochastic models must derive all randomness from it (and the point).
    pub seed: u64,
}

/// Why a model could not evaluate a point.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// The point is valid in the declared domain but the design cannot be built or simulated.
    #[error("infeasible design: {0}")]
    Infeasible(String),
    /// The evaluation itself failed (numerical failure, simulator error, missing resource).
    #[error("evaluation failed: {0}")]
    Failed(String),
}

/// A design model: a point in, metrics out.
///
/// Implementations must be deterministic: the same point and seed give the same metrics, since
/// the journal identifies results by (model, version, point) and resumed sweeps rely on it.
pub trait Model: Send + Sync {
    /// The model's declaration.
    fn info(&self) -> &ModelInfo;

    /// Evaluates one point (values in the order of `info().params`) to metrics (in the order of
    /// `info().metrics`).
    fn evaluate(&self, point: &[Value], ctx: &EvalContext) -> Result<Vec<f64>, ModelError>;

    /// Evaluates several points at once; expensive models (GPU measurements, batched
    /// simulators) override this. The default evaluates one by one.
    fn evaluate_batch(
        &self,
        points: &[&[Value]],
        ctx: &EvalContext,
    ) -> Vec<Result<Vec<f64>, ModelError>> {
        points.iter().map(|p| self.evaluate(p, ctx)).collect()
    }

    /// A timeline (Gantt chart) of how the design runs at `point`, for models that simulate
    /// one; the report draws it for the knee point. The default has none.
    fn timeline(&self, _point: &[Value]) -> Option<Timeline> {
        None
    }
}

/// A timeline to draw as a Gantt chart: one row per resource, bars coloured by activity.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// Title.
    pub title: String,
    /// Row names, top to bottom.
    pub rows: Vec<String>,
    /// Activity names (the legend); bars refer to them by index.
    pub activities: Vec<String>,
    /// Bars.
    pub bars: Vec<TimelineBar>,
    /// Unit of the time axis.
    pub unit: String,
}

/// One bar of a [`Timeline`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimelineBar {
    /// Row index.
    pub row: usize,
    /// Activity index.
    pub activity: usize,
    /// Start.
    pub start: f64,
    /// End.
    pub end: f64,
}

/// Models by name.
#[derive(Default, Clone)]
pub struct Registry {
    models: BTreeMap<String, Arc<dyn Model>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a model under its declared name (a later model of the same name replaces it).
    pub fn register(&mut self, model: Arc<dyn Model>) {
        self.models.insert(model.info().name.clone(), model);
    }

    /// The model called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Model>> {
        self.models.get(name).cloned()
    }

    /// All models, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Model>> {
        self.models.values()
    }

    /// Comma-separated model names (for error messages).
    pub fn names(&self) -> String {
        self.models.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}
