//! archsweep design models: each turns a design point into area, latency, energy and accuracy
//! metrics using the simulators (`sim`), GPU measurements (`gpu`) and RTL flows (`rtl`).
//!
//! [`registry`] is the one place where models are registered by name; the CLI looks them up
//! there. The engine's benchmark problems (ZDT1-3, DTLZ2, trivial) are registered too, so every
//! sweep feature can be tried without any hardware model.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use dse::Registry;

pub mod attention;
pub mod lowbit;
pub mod modred;
pub mod pcie;
pub mod reram;
pub mod ring;

/// Every model archsweep knows, by name, with the default ReRAM technology (ISAAC 32 nm).
pub fn registry() -> Registry {
    registry_with(&sim::reram::tech::Technology::isaac32())
}

/// Every model, the ReRAM ones with technology `tech`.
pub fn registry_with(tech: &sim::reram::tech::Technology) -> Registry {
    let mut r = dse::benchmark_registry();
    for m in modred::all()
        .into_iter()
        .chain(attention::all())
        .chain(lowbit::design::all())
        .chain(ring::all())
        .chain(pcie::all())
        .chain(reram::all_with(tech))
    {
        r.register(m);
    }
    r
}

/// Categorical parameter `i` of a point ("" when it is not categorical).
pub(crate) fn cat(p: &[dse::model::Value], i: usize) -> &str {
    match &p[i] {
        dse::model::Value::Cat(s) => s,
        _ => "",
    }
}

/// Numeric parameter `i` of a point (NaN when it is not numeric).
pub(crate) fn num(p: &[dse::model::Value], i: usize) -> f64 {
    p[i].as_f64().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    #[test]
    fn registry_lists_the_benchmarks() {
        let r = super::registry();
        for name in [
            "zdt1",
            "zdt2",
            "zdt3",
            "dtlz2",
            "trivial",
            "modred.lut",
            "modred.barrett",
            "modred.montgomery",
            "attention.masked",
            "kvcache.pq",
            "ring.attention",
            "pcie.dma",
            "reram.inv",
            "reram.kfac",
            "gemv.lowbit",
            "precision.switch",
        ] {
            assert!(r.get(name).is_some(), "{name} missing");
        }
    }
}
