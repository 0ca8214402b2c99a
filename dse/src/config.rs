//! TOML sweep files: parsing with positions, checking against the model, and the resolved
//! [`Study`]. See the README's config reference for the format.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use crate::expr::Constraint;
use crate::model::{Model, ParamKind, Registry, Value};
use crate::space::{Dim, Domain, Space, StableHash};

/// A problem with a sweep file, located where possible.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// 1-based line and column, when known.
    pub at: Option<(usize, usize)>,
    /// What is wrong and what would be valid.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some((l, c)) => write!(f, "{}:{l}:{c}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// NSGA-II / NSGA-III settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EvoSettings {
    /// Population size.
    pub population: usize,
    /// Generations, the initial population counted as the first.
    pub generations: usize,
    /// Probability that a pair of parents is recombined (SBX).
    pub crossover_prob: f64,
    /// SBX distribution index.
    pub crossover_eta: f64,
    /// Per-variable mutation probability (default 1 / number of free variables).
    pub mutation_prob: f64,
    /// Polynomial-mutation distribution index.
    pub mutation_eta: f64,
    /// NSGA-III: Das-Dennis divisions of the reference directions.
    pub divisions: usize,
    /// NSGA-II: cut the last front by pruning crowding distance (recomputed after each
    /// removal) rather than by the classic one-shot crowding distance.
    pub pruning: bool,
}

/// How points are chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// Every combination of the domains' grid values.
    Grid,
    /// Independent uniform samples.
    Random {
        /// Number of points.
        budget: usize,
    },
    /// Latin hypercube samples.
    Lhs {
        /// Number of points.
        budget: usize,
    },
    /// Owen-scrambled Sobol samples.
    Sobol {
        /// Number of points.
        budget: usize,
    },
    /// NSGA-II (Deb et al. 2002).
    Nsga2(EvoSettings),
    /// NSGA-III with reference directions (Deb and Jain 2014), for 3+ objectives.
    Nsga3(EvoSettings),
    /// Hypervolume-based selection (generational SMS-EMOA), for 3+ objectives.
    SmsEmoa(EvoSettings),
}

impl Strategy {
    /// The strategy's name as written in sweep files.
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Grid => "grid",
            Strategy::Random { .. } => "random",
            Strategy::Lhs { .. } => "lhs",
            Strategy::Sobol { .. } => "sobol",
            Strategy::Nsga2(_) => "nsga2",
            Strategy::Nsga3(_) => "nsga3",
            Strategy::SmsEmoa(_) => "smsemoa",
        }
    }
    /// Whether the strategy is evolutionary (generations, no sharding).
    pub fn evolutionary(&self) -> Option<&EvoSettings> {
        match self {
            Strategy::Nsga2(e) | Strategy::Nsga3(e) | Strategy::SmsEmoa(e) => Some(e),
            _ => None,
        }
    }
}

/// The valid strategy names.
pub const STRATEGIES: &str = "grid, random, lhs, sobol, nsga2, nsga3, smsemoa";

/// One objective.
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    /// Metric name.
    pub name: String,
    /// Metric index in the model.
    pub metric: usize,
    /// Maximise instead of minimise.
    pub maximize: bool,
}

/// One constraint, with its source text.
#[derive(Debug, Clone, PartialEq)]
pub struct ConstraintSpec {
    /// As written.
    pub text: String,
    /// Bound to slots: parameters `0..n_params`, then metrics.
    pub expr: Constraint,
}

/// A checked, resolved study: everything needed to run it.
#[derive(Clone)]
pub struct Study {
    /// Study name.
    pub name: String,
    /// The model.
    pub model: Arc<dyn Model>,
    /// Seed of every random choice.
    pub seed: u64,
    /// Output directory as written in the file (resolved against the working directory).
    pub output: Option<PathBuf>,
    /// The search space.
    pub space: Space,
    /// The strategy.
    pub strategy: Strategy,
    /// Objectives (at least one).
    pub objectives: Vec<Objective>,
    /// Constraints.
    pub constraints: Vec<ConstraintSpec>,
    /// Warnings found while checking (e.g. constraints no point can meet).
    pub warnings: Vec<String>,
    /// The sweep file's text.
    pub source: String,
    /// Hash of everything that determines the results (not the output directory).
    pub config_hash: String,
}

impl fmt::Debug for Study {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Study")
            .field("name", &self.name)
            .field("model", &self.model.info().name)
            .finish_non_exhaustive()
    }
}

impl Study {
    /// Number of points the study will evaluate (before sharding and deduplication).
    pub fn planned_points(&self) -> usize {
        match &self.strategy {
            Strategy::Grid => self.space.grid_len(),
            Strategy::Random { budget } | Strategy::Lhs { budget } | Strategy::Sobol { budget } => {
                *budget
            }
            Strategy::Nsga2(e) | Strategy::Nsga3(e) | Strategy::SmsEmoa(e) => {
                e.population * e.generations
            }
        }
    }

    /// The constraint environment for a point and its metrics: parameters (categoricals NaN),
    /// then metrics.
    pub fn env(&self, point: &[Value], metrics: &[f64]) -> Vec<f64> {
        point
            .iter()
            .map(|v| v.as_f64().unwrap_or(f64::NAN))
            .chain(metrics.iter().copied())
            .collect()
    }

    /// Total constraint violation (0 = feasible).
    pub fn violation(&self, point: &[Value], metrics: &[f64]) -> f64 {
        if self.constraints.is_empty() {
            return 0.0;
        }
        let env = self.env(point, metrics);
        self.constraints
            .iter()
            .map(|c| c.expr.violation(&env))
            .sum()
    }

    /// Objective vector to minimise (maximised metrics negated).
    pub fn objective_vector(&self, metrics: &[f64]) -> Vec<f64> {
        self.objectives
            .iter()
            .map(|o| {
                if o.maximize {
                    -metrics[o.metric]
                } else {
                    metrics[o.metric]
                }
            })
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    name: Spanned<String>,
    model: Spanned<String>,
    #[serde(default)]
    seed: Option<Spanned<i64>>,
    output: Option<String>,
    unlisted: Option<Spanned<String>>,
    #[serde(default)]
    constraints: Vec<Spanned<String>>,
    #[serde(default)]
    parameters: BTreeMap<String, Spanned<toml::Value>>,
    strategy: Spanned<RawStrategy>,
    objectives: Spanned<RawObjectives>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStrategy {
    kind: Spanned<String>,
    budget: Option<Spanned<i64>>,
    levels: Option<Spanned<i64>>,
    population: Option<Spanned<i64>>,
    generations: Option<Spanned<i64>>,
    crossover_prob: Option<Spanned<toml::Value>>,
    crossover_eta: Option<Spanned<toml::Value>>,
    mutation_prob: Option<Spanned<toml::Value>>,
    mutation_eta: Option<Spanned<toml::Value>>,
    divisions: Option<Spanned<i64>>,
    crowding: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawObjectives {
    #[serde(default)]
    minimize: Vec<Spanned<String>>,
    #[serde(default)]
    maximize: Vec<Spanned<String>>,
}

/// Reads and checks a sweep file.
pub fn load(path: &Path, registry: &Registry) -> Result<Study, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        at: None,
        message: format!("cannot read: {e}"),
    })?;
    parse(&text, &file, registry)
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err<T>(&self, offset: usize, message: impl Into<String>) -> Result<T, ConfigError> {
        Err(self.error(offset, message))
    }
    fn error(&self, offset: usize, message: impl Into<String>) -> ConfigError {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ConfigError {
            file: self.file.to_string(),
            at: Some((line, col)),
            message: message.into(),
        }
    }
}

fn number(v: &Spanned<toml::Value>, what: &str, cx: &Ctx) -> Result<f64, ConfigError> {
    match v.get_ref() {
        toml::Value::Integer(i) => Ok(*i as f64),
        toml::Value::Float(x) if x.is_finite() => Ok(*x),
        other => cx.err(
            v.span().start,
            format!("{what} must be a finite number, found {}", other.type_str()),
        ),
    }
}

fn positive(
    v: &Option<Spanned<i64>>,
    what: &str,
    default: Option<usize>,
    cx: &Ctx,
) -> Result<usize, ConfigError> {
    match v {
        Some(s) if *s.get_ref() >= 1 => Ok(*s.get_ref() as usize),
        Some(s) => cx.err(
            s.span().start,
            format!("{what} must be at least 1, found {}", s.get_ref()),
        ),
        None => default.ok_or_else(|| cx.error(0, format!("strategy needs '{what}'"))),
    }
}

/// Parses and checks sweep-file text (`file` names it in messages).
pub fn parse(text: &str, file: &str, registry: &Registry) -> Result<Study, ConfigError> {
    let cx = Ctx { file, text };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let msg = e.message().trim().to_string();
        match e.span() {
            Some(s) => cx.error(s.start, msg),
            None => ConfigError {
                file: file.to_string(),
                at: None,
                message: msg,
            },
        }
    })?;
    let model = registry.get(raw.model.get_ref()).ok_or_else(|| {
        cx.error(
            raw.model.span().start,
            format!(
                "unknown model '{}'; valid models: {}",
                raw.model.get_ref(),
                registry.names()
            ),
        )
    })?;
    let info = model.info().clone();
    let seed = match &raw.seed {
        Some(s) if *s.get_ref() >= 0 => *s.get_ref() as u64,
        Some(s) => return cx.err(s.span().start, "seed must be a non-negative integer"),
        None => 0,
    };

    // Parameters.
    let unlisted_sweep = match raw.unlisted.as_ref().map(|s| s.get_ref().as_str()) {
        None | Some("sweep") => true,
        Some("default") => false,
        Some(other) => {
            let at = raw.unlisted.as_ref().map_or(0, |s| s.span().start);
            return cx.err(
                at,
                format!("unlisted must be \"sweep\" or \"default\", found \"{other}\""),
            );
        }
    };
    let strat = raw.strategy.get_ref();
    let default_levels = positive(&strat.levels, "levels", Some(5), &cx)?;
    let mut space = Space::defaults(&info.params);
    for (name, _) in raw.parameters.iter() {
        if info.param_index(name).is_none() {
            let at = raw.parameters[name].span().start;
            return cx.err(
                at,
                format!(
                    "unknown parameter '{name}' of model '{}'; valid parameters: {}",
                    info.name,
                    info.param_names()
                ),
            );
        }
    }
    for (i, p) in info.params.iter().enumerate() {
        let domain = match raw.parameters.get(&p.name) {
            Some(v) => parse_domain(v, p, default_levels, &cx)?,
            None if unlisted_sweep => Some(full_domain(&p.kind, default_levels)),
            None => None,
        };
        match domain {
            Some(Domain::Choice(vals)) if vals.len() == 1 => space.base[i] = vals[0].clone(),
            Some(d) => space.dims.push(Dim {
                param: i,
                name: p.name.clone(),
                domain: d,
            }),
            None => {
                if let Some(v) = raw.parameters.get(&p.name) {
                    space.base[i] = scalar_value(v, p, &cx)?;
                }
            }
        }
    }

    // Objectives.
    let mut objectives = Vec::new();
    let obj = raw.objectives.get_ref();
    for (list, maximize) in [(&obj.minimize, false), (&obj.maximize, true)] {
        for m in list {
            let Some(idx) = info.metric_index(m.get_ref()) else {
                return cx.err(
                    m.span().start,
                    format!(
                        "unknown metric '{}' of model '{}'; valid metrics: {}",
                        m.get_ref(),
                        info.name,
                        info.metric_names()
                    ),
                );
            };
            if objectives.iter().any(|o: &Objective| o.metric == idx) {
                return cx.err(
                    m.span().start,
                    format!("metric '{}' is listed twice", m.get_ref()),
                );
            }
            objectives.push(Objective {
                name: m.get_ref().clone(),
                metric: idx,
                maximize,
            });
        }
    }
    if objectives.is_empty() {
        return cx.err(
            raw.objectives.span().start,
            format!(
                "no objectives: list metrics under minimize or maximize; valid metrics: {}",
                info.metric_names()
            ),
        );
    }

    // Constraints.
    let np = info.params.len();
    let mut constraints = Vec::new();
    let mut warnings = Vec::new();
    for c in &raw.constraints {
        let base = c.span().start + 1; // past the opening quote
        let mut expr = Constraint::parse(c.get_ref())
            .map_err(|e| cx.error(base + e.offset, format!("in constraint: {}", e.message)))?;
        for (name, off) in expr.names() {
            if let Some(pi) = info.param_index(&name) {
                if matches!(info.params[pi].kind, ParamKind::Categorical { .. }) {
                    return cx.err(
                        base + off,
                        format!(
                            "parameter '{name}' is categorical and cannot appear in a constraint"
                        ),
                    );
                }
            } else if info.metric_index(&name).is_none() {
                return cx.err(
                    base + off,
                    format!(
                        "unknown name '{name}' in constraint; metrics: {}; parameters: {}",
                        info.metric_names(),
                        info.param_names()
                    ),
                );
            }
        }
        let resolve = |n: &str| {
            info.param_index(n)
                .or_else(|| info.metric_index(n).map(|m| np + m))
        };
        expr.bind(&resolve)
            .map_err(|(n, off)| cx.error(base + off, format!("unknown name '{n}'")))?;
        let bounds = slot_bounds(&space, &info);
        if !expr.satisfiable(&bounds) {
            let (l, col) = cx.error(c.span().start, "").at.unwrap_or((0, 0));
            warnings.push(format!("{file}:{l}:{col}: constraint '{}' can never be met over this space: no point will be feasible", c.get_ref()));
        }
        constraints.push(ConstraintSpec {
            text: c.get_ref().clone(),
            expr,
        });
    }

    let strategy = parse_strategy(strat, raw.strategy.span().start, &space, &objectives, &cx)?;
    if let Strategy::Grid = strategy {
        if space.grid_len() == usize::MAX {
            return cx.err(
                raw.strategy.span().start,
                "the grid is too large to enumerate",
            );
        }
        if let Some(b) = &strat.budget {
            if space.grid_len() > *b.get_ref() as usize {
                return cx.err(b.span().start, format!("the grid has {} points, more than budget = {}; narrow the domains, lower levels, or raise the budget", space.grid_len(), b.get_ref()));
            }
        }
    }
    if space.dims.is_empty() {
        warnings.push(format!(
            "{file}: every parameter is fixed: the study evaluates a single point"
        ));
    }

    let mut study = Study {
        name: raw.name.get_ref().clone(),
        model,
        seed,
        output: raw.output.map(PathBuf::from),
        space,
        strategy,
        objectives,
        constraints,
        warnings,
        source: text.to_string(),
        config_hash: String::new(),
    };
    study.config_hash = config_hash(&study);
    Ok(study)
}

/// Hash of everything that determines a study's results.
pub fn config_hash(s: &Study) -> String {
    let info = s.model.info();
    let mut h = StableHash::default();
    h.str(&info.name)
        .str(&info.version)
        .str(&s.seed.to_string());
    h.str(&format!("{:?}", s.space))
        .str(&format!("{:?}", s.strategy))
        .str(&format!("{:?}", s.objectives));
    for c in &s.constraints {
        h.str(&format!("{:?}", c.expr));
    }
    h.hex()
}

fn full_domain(kind: &ParamKind, levels: usize) -> Domain {
    match kind {
        ParamKind::Int { min, max } => Domain::Int {
            min: *min,
            max: *max,
            step: 1,
        },
        ParamKind::Real { min, max, log } => Domain::Real {
            min: *min,
            max: *max,
            log: *log,
            levels,
        },
        ParamKind::Categorical { choices } => {
            Domain::Choice(choices.iter().map(|c| Value::Cat(c.clone())).collect())
        }
        ParamKind::Bool => Domain::Choice(vec![Value::Bool(false), Value::Bool(true)]),
    }
}

fn scalar_value(
    v: &Spanned<toml::Value>,
    p: &crate::model::ParamSpec,
    cx: &Ctx,
) -> Result<Value, ConfigError> {
    let at = v.span().start;
    let val = match (&p.kind, v.get_ref()) {
        (ParamKind::Int { .. }, toml::Value::Integer(i)) => Value::Int(*i),
        (ParamKind::Real { .. }, toml::Value::Integer(i)) => Value::Real(*i as f64),
        (ParamKind::Real { .. }, toml::Value::Float(x)) => Value::Real(*x),
        (ParamKind::Categorical { .. }, toml::Value::String(s)) => Value::Cat(s.clone()),
        (ParamKind::Bool, toml::Value::Boolean(b)) => Value::Bool(*b),
        (_, other) => {
            return cx.err(
                at,
                format!(
                    "parameter '{}' takes {}, found {}",
                    p.name,
                    p.domain_text(),
                    other.type_str()
                ),
            )
        }
    };
    if !p.admits(&val) {
        return cx.err(
            at,
            format!(
                "value {val} is out of range for parameter '{}': {}",
                p.name,
                p.domain_text()
            ),
        );
    }
    Ok(val)
}

/// A parameter's entry: a scalar fixes it (returned as a one-value choice), a list enumerates
/// values, a table narrows the range.
fn parse_domain(
    v: &Spanned<toml::Value>,
    p: &crate::model::ParamSpec,
    levels: usize,
    cx: &Ctx,
) -> Result<Option<Domain>, ConfigError> {
    let at = v.span().start;
    match v.get_ref() {
        toml::Value::Array(items) => {
            if items.is_empty() {
                return cx.err(
                    at,
                    format!("empty list of values for parameter '{}'", p.name),
                );
            }
            let mut vals = Vec::new();
            for it in items {
                let val = scalar_value(&Spanned::new(at..at, it.clone()), p, cx)?;
                if !vals.contains(&val) {
                    vals.push(val);
                }
            }
            Ok(Some(Domain::Choice(vals)))
        }
        toml::Value::Table(t) => {
            let allowed = ["min", "max", "step", "log", "levels"];
            if let Some(k) = t.keys().find(|k| !allowed.contains(&k.as_str())) {
                return cx.err(
                    at,
                    format!(
                        "unknown key '{k}' in the range of '{}'; valid keys: {}",
                        p.name,
                        allowed.join(", ")
                    ),
                );
            }
            let num = |k: &str| -> Result<Option<f64>, ConfigError> {
                match t.get(k) {
                    None => Ok(None),
                    Some(x) => number(
                        &Spanned::new(at..at, x.clone()),
                        &format!("{}.{k}", p.name),
                        cx,
                    )
                    .map(Some),
                }
            };
            let lvl = match num("levels")? {
                Some(l) if l >= 1.0 && l.fract() == 0.0 => l as usize,
                Some(l) => {
                    return cx.err(
                        at,
                        format!("{}.levels must be a positive integer, found {l}", p.name),
                    )
                }
                None => levels,
            };
            match &p.kind {
                ParamKind::Int { min, max } => {
                    let lo = num("min")?.unwrap_or(*min as f64);
                    let hi = num("max")?.unwrap_or(*max as f64);
                    let step = num("step")?.unwrap_or(1.0);
                    if lo.fract() != 0.0 || hi.fract() != 0.0 || step.fract() != 0.0 || step < 1.0 {
                        return cx.err(at, format!("'{}' is an integer parameter: min, max and step must be integers (step >= 1)", p.name));
                    }
                    check_range(lo, hi, *min as f64, *max as f64, p, at, cx)?;
                    if t.contains_key("log") {
                        return cx.err(
                            at,
                            format!(
                                "'{}' is an integer parameter; log applies to real parameters",
                                p.name
                            ),
                        );
                    }
                    Ok(Some(Domain::Int {
                        min: lo as i64,
                        max: hi as i64,
                        step: step as i64,
                    }))
                }
                ParamKind::Real { min, max, log } => {
                    let lo = num("min")?.unwrap_or(*min);
                    let hi = num("max")?.unwrap_or(*max);
                    check_range(lo, hi, *min, *max, p, at, cx)?;
                    let log = match t.get("log") {
                        None => *log,
                        Some(toml::Value::Boolean(b)) => *b,
                        Some(_) => {
                            return cx.err(at, format!("{}.log must be true or false", p.name))
                        }
                    };
                    if log && lo <= 0.0 {
                        return cx.err(
                            at,
                            format!("{}: a log-scaled range needs min > 0, found {lo}", p.name),
                        );
                    }
                    if t.contains_key("step") {
                        return cx.err(
                            at,
                            format!(
                                "'{}' is a real parameter: use levels for grids, not step",
                                p.name
                            ),
                        );
                    }
                    Ok(Some(Domain::Real {
                        min: lo,
                        max: hi,
                        log,
                        levels: lvl,
                    }))
                }
                _ => cx.err(
                    at,
                    format!(
                        "parameter '{}' takes {}: give one value or a list, not a range",
                        p.name,
                        p.domain_text()
                    ),
                ),
            }
        }
        _ => Ok(Some(Domain::Choice(vec![scalar_value(v, p, cx)?]))),
    }
}

fn check_range(
    lo: f64,
    hi: f64,
    min: f64,
    max: f64,
    p: &crate::model::ParamSpec,
    at: usize,
    cx: &Ctx,
) -> Result<(), ConfigError> {
    if lo > hi {
        return cx.err(
            at,
            format!("empty range for '{}': min {lo} > max {hi}", p.name),
        );
    }
    if lo < min || hi > max {
        return cx.err(
            at,
            format!(
                "range [{lo}, {hi}] of '{}' leaves the model's domain: {}",
                p.name,
                p.domain_text()
            ),
        );
    }
    Ok(())
}

/// Interval of every constraint slot over the space: parameters from their domains, metrics
/// from the bounds the model declares (unbounded when it declares none).
fn slot_bounds(space: &Space, info: &crate::model::ModelInfo) -> Vec<(f64, f64)> {
    let mut b: Vec<(f64, f64)> = space
        .base
        .iter()
        .map(|v| {
            v.as_f64()
                .map_or((f64::NEG_INFINITY, f64::INFINITY), |x| (x, x))
        })
        .collect();
    for d in &space.dims {
        b[d.param] = match &d.domain {
            Domain::Int { min, max, .. } => (*min as f64, *max as f64),
            Domain::Real { min, max, .. } => (*min, *max),
            Domain::Choice(v) => {
                let xs: Vec<f64> = v.iter().filter_map(|x| x.as_f64()).collect();
                if xs.is_empty() {
                    (f64::NEG_INFINITY, f64::INFINITY)
                } else {
                    (
                        xs.iter().copied().fold(f64::INFINITY, f64::min),
                        xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    )
                }
            }
        };
    }
    b.extend(
        info.metrics
            .iter()
            .map(|m| m.bounds.unwrap_or((f64::NEG_INFINITY, f64::INFINITY))),
    );
    b
}

fn parse_strategy(
    s: &RawStrategy,
    at: usize,
    space: &Space,
    objectives: &[Objective],
    cx: &Ctx,
) -> Result<Strategy, ConfigError> {
    let kind = s.kind.get_ref().as_str();
    let budget = || {
        positive(&s.budget, "budget", None, cx).map_err(|_| {
            cx.error(
                at,
                format!("strategy '{kind}' needs budget = <number of points>"),
            )
        })
    };
    let budget_checked = || match &s.budget {
        Some(b) if *b.get_ref() < 1 => cx.err(
            b.span().start,
            format!("budget must be at least 1, found {}", b.get_ref()),
        ),
        _ => budget(),
    };
    let st = match kind {
        "grid" => Strategy::Grid,
        "random" => Strategy::Random {
            budget: budget_checked()?,
        },
        "lhs" => Strategy::Lhs {
            budget: budget_checked()?,
        },
        "sobol" => {
            let budget = budget_checked()?;
            let (max_n, max_d) = (
                crate::strategy::sampling::SOBOL_MAX_POINTS,
                crate::strategy::sampling::SOBOL_MAX_DIMS,
            );
            if budget > max_n {
                let at = s.budget.as_ref().map_or(at, |b| b.span().start);
                return cx.err(at, format!("the Sobol sampler supports at most {max_n} points, budget is {budget}; use lhs or random for more, or shard several Sobol studies with different seeds"));
            }
            if space.dims.len() > max_d {
                return cx.err(at, format!("the Sobol sampler supports at most {max_d} free parameters, this space has {}; use lhs or random", space.dims.len()));
            }
            Strategy::Sobol { budget }
        }
        "nsga2" | "nsga3" | "smsemoa" => {
            if space.dims.is_empty() {
                return cx.err(at, format!("{kind} needs at least one free parameter"));
            }
            let population = positive(&s.population, "population", Some(100), cx)?;
            if population < 4 {
                return cx.err(
                    s.population.as_ref().map_or(at, |p| p.span().start),
                    "population must be at least 4",
                );
            }
            let mut generations = positive(&s.generations, "generations", Some(100), cx)?;
            if let Some(b) = &s.budget {
                let b = positive(&Some(b.clone()), "budget", None, cx)?;
                generations = generations.min((b / population).max(1));
            }
            let f = |v: &Option<Spanned<toml::Value>>,
                     name: &str,
                     default: f64,
                     lo: f64,
                     hi: f64|
             -> Result<f64, ConfigError> {
                match v {
                    None => Ok(default),
                    Some(x) => {
                        let n = number(x, name, cx)?;
                        if n < lo || n > hi {
                            return cx.err(
                                x.span().start,
                                format!("{name} must lie in [{lo}, {hi}], found {n}"),
                            );
                        }
                        Ok(n)
                    }
                }
            };
            let m = objectives.len();
            let divisions = match &s.divisions {
                Some(d) => positive(&Some(d.clone()), "divisions", None, cx)?,
                None => crate::strategy::nsga3::default_divisions(m, population),
            };
            let e = EvoSettings {
                population,
                generations,
                crossover_prob: f(&s.crossover_prob, "crossover_prob", 0.9, 0.0, 1.0)?,
                crossover_eta: f(&s.crossover_eta, "crossover_eta", 15.0, 0.0, 1e4)?,
                mutation_prob: f(
                    &s.mutation_prob,
                    "mutation_prob",
                    1.0 / space.dims.len() as f64,
                    0.0,
                    1.0,
                )?,
                mutation_eta: f(&s.mutation_eta, "mutation_eta", 20.0, 0.0, 1e4)?,
                divisions,
                pruning: match s.crowding.as_ref().map(|c| c.get_ref().as_str()) {
                    None | Some("pruning") => true,
                    Some("classic") => false,
                    Some(other) => {
                        let at = s.crowding.as_ref().map_or(at, |c| c.span().start);
                        return cx.err(
                            at,
                            format!("unknown crowding '{other}'; valid: pruning, classic"),
                        );
                    }
                },
            };
            match kind {
                "nsga2" => Strategy::Nsga2(e),
                "nsga3" => Strategy::Nsga3(e),
                _ => Strategy::SmsEmoa(e),
            }
        }
        other => {
            return cx.err(
                s.kind.span().start,
                format!("unknown strategy '{other}'; valid strategies: {STRATEGIES}"),
            )
        }
    };
    let evo_keys = [
        ("population", s.population.is_some()),
        ("generations", s.generations.is_some()),
        ("divisions", s.divisions.is_some()),
    ];
    if st.evolutionary().is_none() {
        if let Some((k, _)) = evo_keys.iter().find(|(_, set)| *set) {
            return cx.err(at, format!("'{k}' applies to nsga2/nsga3, not to '{kind}'"));
        }
    }
    Ok(st)
}
