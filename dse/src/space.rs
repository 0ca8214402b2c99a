//! The search space of a study: for each model parameter, a fixed value or a domain to explore,
//! and the mappings from the unit cube (samplers) and from genes (evolutionary search) to points.

use crate::model::{ParamSpec, Value};

/// How one free parameter may vary.
#[derive(Debug, Clone, PartialEq)]
pub enum Domain {
    /// Integers `min, min + step, ..., <= max`.
    Int {
        /// First value.
        min: i64,
        /// Upper bound (inclusive).
        max: i64,
        /// Spacing.
        step: i64,
    },
    /// Reals in `[min, max]`, uniform in `ln x` when `log`; a grid takes `levels` values.
    Real {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
        /// Log scale.
        log: bool,
        /// Number of grid levels.
        levels: usize,
    },
    /// One of the listed values (categorical, boolean, or an explicit list).
    Choice(Vec<Value>),
}

impl Domain {
    /// Number of distinct values a grid visits.
    pub fn grid_len(&self) -> usize {
        match self {
            Domain::Int { min, max, step } => ((max - min) / step) as usize + 1,
            Domain::Real {
                levels, min, max, ..
            } => {
                if min == max {
                    1
                } else {
                    *levels
                }
            }
            Domain::Choice(v) => v.len(),
        }
    }

    /// The `k`-th grid value.
    pub fn grid_value(&self, k: usize) -> Value {
        match self {
            Domain::Int { min, step, .. } => Value::Int(min + step * k as i64),
            Domain::Real { levels, .. } if *levels <= 1 => self.from_unit(0.5),
            Domain::Real {
                min,
                max,
                log,
                levels,
            } => {
                let t = k as f64 / (*levels - 1) as f64;
                Value::Real(if *log {
                    (min.ln() + t * (max.ln() - min.ln()))
                        .exp()
                        .clamp(*min, *max)
                } else {
                    min + t * (max - min)
                })
            }
            Domain::Choice(v) => v[k].clone(),
        }
    }

    /// Maps `u` in `[0, 1)` to a value: reals linearly (or in log space), discrete domains by
    /// equal-width strata.
    pub fn from_unit(&self, u: f64) -> Value {
        match self {
            Domain::Real { min, max, log, .. } => {
                let x = if *log {
                    (min.ln() + u * (max.ln() - min.ln())).exp()
                } else {
                    min + u * (max - min)
                };
                Value::Real(x.clamp(*min, *max))
            }
            _ => {
                let n = self.grid_len();
                self.grid_value(((u * n as f64) as usize).min(n - 1))
            }
        }
    }

    /// The gene range for evolutionary search: reals live in `[min, max]` (log space when
    /// `log`), integers and choices in index space `[0, len - 1]`.
    pub fn gene_bounds(&self) -> (f64, f64) {
        match self {
            Domain::Real {
                min,
                max,
                log: true,
                ..
            } => (min.ln(), max.ln()),
            Domain::Real { min, max, .. } => (*min, *max),
            _ => (0.0, (self.grid_len() - 1) as f64),
        }
    }

    /// Decodes a gene (rounding integer genes to the nearest index).
    pub fn from_gene(&self, g: f64) -> Value {
        match self {
            Domain::Real { min, max, log, .. } => {
                Value::Real((if *log { g.exp() } else { g }).clamp(*min, *max))
            }
            _ => self.grid_value((g.round().max(0.0) as usize).min(self.grid_len() - 1)),
        }
    }

    /// Whether this is an unordered (categorical) domain, mutated by resampling rather than by
    /// numeric perturbation.
    pub fn is_categorical(&self) -> bool {
        matches!(self, Domain::Choice(v) if v.iter().any(|x| matches!(x, Value::Cat(_) | Value::Bool(_))))
    }

    /// Whether this is a real-valued domain.
    pub fn is_real(&self) -> bool {
        matches!(self, Domain::Real { .. })
    }
}

/// One parameter that varies, with the index of the model parameter it sets.
#[derive(Debug, Clone, PartialEq)]
pub struct Dim {
    /// Index into the model's parameters.
    pub param: usize,
    /// Parameter name.
    pub name: String,
    /// Its domain.
    pub domain: Domain,
}

/// A study's search space: fixed values for every parameter plus the free dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Space {
    /// One value per model parameter: the fixed value, or the default for free ones.
    pub base: Vec<Value>,
    /// Parameter names, in model order.
    pub names: Vec<String>,
    /// The free dimensions, in parameter order.
    pub dims: Vec<Dim>,
}

impl Space {
    /// A space with every parameter fixed at its default.
    pub fn defaults(params: &[ParamSpec]) -> Self {
        Space {
            base: params.iter().map(|p| p.default.clone()).collect(),
            names: params.iter().map(|p| p.name.clone()).collect(),
            dims: Vec::new(),
        }
    }

    /// The point at unit-cube coordinates `u` (one per free dimension).
    pub fn from_unit(&self, u: &[f64]) -> Vec<Value> {
        let mut p = self.base.clone();
        for (d, &x) in self.dims.iter().zip(u) {
            p[d.param] = d.domain.from_unit(x);
        }
        p
    }

    /// The point for genes `g` (one per free dimension).
    pub fn from_genes(&self, g: &[f64]) -> Vec<Value> {
        let mut out = Vec::with_capacity(self.base.len());
        let mut d = 0;
        for (i, b) in self.base.iter().enumerate() {
            match self.dims.get(d) {
                Some(dim) if dim.param == i => {
                    out.push(dim.domain.from_gene(g[d]));
                    d += 1;
                }
                _ => out.push(b.clone()),
            }
        }
        out
    }

    /// Number of grid points (saturating).
    pub fn grid_len(&self) -> usize {
        self.dims
            .iter()
            .fold(1usize, |acc, d| acc.saturating_mul(d.domain.grid_len()))
    }

    /// The `k`-th grid point (last dimension varies fastest).
    pub fn grid_point(&self, mut k: usize) -> Vec<Value> {
        let mut p = self.base.clone();
        for d in self.dims.iter().rev() {
            let n = d.domain.grid_len();
            p[d.param] = d.domain.grid_value(k % n);
            k /= n;
        }
        p
    }
}

/// A stable 128-bit hash (two 64-bit multiply-rotate lanes fed a word at a time, finished
/// with SplitMix64), identical on every platform and run.
#[derive(Debug, Clone)]
pub struct StableHash {
    a: u64,
    b: u64,
}

impl Default for StableHash {
    fn default() -> Self {
        StableHash {
            a: 0x243F_6A88_85A3_08D3,
            b: 0x1319_8A2E_0370_7344,
        }
    }
}

impl StableHash {
    /// Feeds one 64-bit word.
    #[inline]
    pub fn word(&mut self, w: u64) -> &mut Self {
        self.a = (self.a ^ w)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
        self.b = (self.b.rotate_left(23) ^ w).wrapping_mul(0xC2B2_AE3D_27D4_EB4F) ^ self.a;
        self
    }
    /// Feeds bytes (length-prefixed, so concatenations cannot collide).
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.word(b.len() as u64);
        for c in b.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.word(u64::from_le_bytes(w));
        }
        self
    }
    /// Feeds a string.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }
    /// Feeds a value with a type tag (reals by their exact bits).
    #[inline]
    pub fn value(&mut self, v: &Value) -> &mut Self {
        match v {
            Value::Int(i) => self.word(1).word(*i as u64),
            Value::Real(x) => self.word(2).word(x.to_bits()),
            Value::Cat(s) => self.word(3).str(s),
            Value::Bool(b) => self.word(4 + *b as u64),
        }
    }
    /// The 128-bit result.
    pub fn finish(&self) -> u128 {
        let mix = |mut z: u64| {
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let hi = mix(self.a ^ self.b.rotate_left(32));
        let lo = mix(self.b.wrapping_add(hi));
        ((hi as u128) << 64) | lo as u128
    }
    /// The result as 32 hex digits.
    pub fn hex(&self) -> String {
        format!("{:032x}", self.finish())
    }
}

/// The identity of an evaluated point: a hash of model name, model version and every parameter
/// (name and exact value). Written as 32 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PointId(pub u128);

impl std::fmt::Display for PointId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl serde::Serialize for PointId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PointId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s: std::borrow::Cow<'de, str> = serde::Deserialize::deserialize(d)?;
        u128::from_str_radix(&s, 16)
            .map(PointId)
            .map_err(|_| serde::de::Error::custom(format!("bad point id '{s}'")))
    }
}

/// Computes point identities for one model: the model name, version and parameter names are
/// hashed once, each point then only adds its values.
#[derive(Debug, Clone)]
pub struct PointHasher {
    prefix: StableHash,
}

impl PointHasher {
    /// The hasher for a model and its parameter names.
    pub fn new(model: &str, version: &str, names: &[String]) -> Self {
        let mut prefix = StableHash::default();
        prefix.str(model).str(version).word(names.len() as u64);
        for n in names {
            prefix.str(n);
        }
        PointHasher { prefix }
    }

    /// The identity of `values`.
    pub fn id(&self, values: &[Value]) -> PointId {
        let mut h = self.prefix.clone();
        for v in values {
            h.value(v);
        }
        PointId(h.finish())
    }
}

/// A `Hasher` for [`PointId`] keys, which are hashes already: it passes their bits through
/// instead of hashing them again.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 ^= v as u64 ^ (v >> 64) as u64;
    }
}

/// A map keyed by point identity.
pub type IdMap<V> = std::collections::HashMap<PointId, V, std::hash::BuildHasherDefault<IdHasher>>;
/// A set of point identities.
pub type IdSet = std::collections::HashSet<PointId, std::hash::BuildHasherDefault<IdHasher>>;
