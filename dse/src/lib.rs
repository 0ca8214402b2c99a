//! archsweep's design-space exploration engine.
//!
//! A [`model::Model`] declares parameters and metrics and evaluates points. A sweep file
//! ([`config`]) picks a model, a search space, a [`config::Strategy`], objectives and
//! constraints; the [`runner`] evaluates points in parallel, appends each to a crash-safe
//! [`journal`], resumes by skipping what the journal holds, and finishes with the points table
//! ([`results`]), Pareto analysis ([`pareto`], [`hypervolume`]) and a [`report`]. The engine
//! knows nothing of any simulator: the `models` crate implements models and registers them.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod benchmarks;
pub mod config;
pub mod expr;
pub mod hypervolume;
pub mod journal;
pub mod merge;
pub mod model;
pub mod pareto;
pub mod report;
pub mod results;
pub mod runner;
pub mod space;
pub mod strategy;

pub use config::{Strategy, Study};
pub use model::{Model, ModelInfo, Registry, Value};

/// A registry holding the engine's own benchmark models (ZDT1-3, DTLZ2, trivial).
pub fn benchmark_registry() -> Registry {
    let mut r = Registry::new();
    for m in benchmarks::all() {
        r.register(m);
    }
    r
}
