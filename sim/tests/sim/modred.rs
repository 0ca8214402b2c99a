//! The reducers against num-bigint: every architecture at 128-8192 bits on random inputs and
//! edge cases, random design points, the published structural facts, and bad input.

use num_bigint::BigUint;
use num_traits::{One, Zero};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim::modred::{
    cost::{FpgaCoeffs, Inventory, Weights},
    edge_cases, is_probable_prime, random_bits, Arch, Arity, DesignSpec, ModredError, Modulus,
    Plan, Reducer, TableMem, PRESET_WIDTHS,
};

/// A random number below 2^bits; every fourth one has a random shorter length, so that small
/// inputs (no bits above the modulus) are covered too.
fn random_below(rng: &mut ChaCha8Rng, bits: u64) -> BigUint {
    let len = if rng.random_range(0..4) == 0 {
        rng.random_range(1..=bits)
    } else {
        bits
    };
    random_bits(rng, len)
}

/// The designs checked at every width: one per architecture, with the iterative and hybrid
/// designs using different digit widths, arities and fusion points.
fn designs(w: u64) -> Vec<DesignSpec> {
    let lut = DesignSpec::lut(w, 6);
    vec![
        lut.clone(),
        DesignSpec {
            arch: Arch::Iter,
            k_iter: 8,
            cycles: 8,
            ..lut.clone()
        },
        DesignSpec {
            arch: Arch::Hybrid,
            k: 5,
            k_iter: 7,
            cycles: 16,
            lut_share: 0.4,
            fusion: 3,
            arity: Arity::Csa,
            regs_every: 2,
            ..lut.clone()
        },
        DesignSpec {
            arch: Arch::Hybrid,
            cycles: 12,
            lut_share: 0.3,
            fusion: 99,
            arity: Arity::Ternary,
            ..lut.clone()
        },
        lut.clone().with_arch(Arch::Barrett),
        lut.with_arch(Arch::Montgomery),
    ]
}

fn check_width(bits: u64, inputs: usize) {
    for family in ["ntt", "random"] {
        let m = Modulus::preset(family, bits).unwrap();
        let q = m.value().clone();
        let w = 2 * bits;
        let mut rng = ChaCha8Rng::seed_from_u64(bits * 31 + family.len() as u64);
        let mut xs = edge_cases(&q, w);
        // The second family gets fewer random inputs: the first already covers the structure.
        let count = if family == "ntt" { inputs } else { inputs / 10 };
        xs.extend((0..count).map(|_| random_below(&mut rng, w)));
        for d in designs(w) {
            let r = Reducer::new(&m, &d).unwrap_or_else(|e| panic!("{bits} {:?}: {e}", d.arch));
            for x in &xs {
                let got = r.reduce(x).unwrap();
                assert_eq!(got, x % &q, "{family}:{bits} {:?} x = {x:#x}", d.arch);
            }
        }
    }
}

#[test]
fn exact_at_128_bits() {
    check_width(128, 10_000);
}

#[test]
fn exact_at_256_bits() {
    check_width(256, 10_000);
}

#[test]
fn exact_at_1024_bits() {
    check_width(1024, 10_000);
}

#[test]
fn exact_at_4096_bits() {
    check_width(4096, 10_000);
}

#[test]
fn exact_at_8192_bits() {
    check_width(8192, 10_000);
}

#[test]
fn montgomery_outputs_x_over_r() {
    for bits in [128u64, 1024] {
        let m = Modulus::preset("random", bits).unwrap();
        let q = m.value().clone();
        let w = 2 * bits;
        let d = DesignSpec::lut(w, 6).with_arch(Arch::Montgomery);
        let r = Reducer::new(&m, &d).unwrap();
        // R = 2^(w-n+1); R^-1 mod q by Fermat (q is prime).
        let rr = (BigUint::one() << (w - bits + 1)) % &q;
        let r_inv = rr.modpow(&(&q - 2u32), &q);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..2000 {
            let x = random_below(&mut rng, w);
            assert_eq!(r.hardware_output(&x).unwrap(), (&x * &r_inv) % &q);
        }
    }
}

#[test]
fn barrett_needs_at_most_two_subtractions() {
    let m = Modulus::preset("ntt", 256).unwrap();
    let q = m.value().clone();
    let plan = sim::modred::BarrettPlan::new(&m, 512).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut worst = 0;
    let mut xs = edge_cases(&q, 512);
    xs.extend((0..5000).map(|_| random_below(&mut rng, 512)));
    for x in xs {
        let (r, subs) = plan.reduce_counting(&x);
        assert_eq!(r, &x % &q);
        worst = worst.max(subs);
    }
    assert!(worst <= 2, "{worst} subtractions");
}

#[test]
fn presets_are_prime_and_ntt_friendly() {
    for bits in PRESET_WIDTHS {
        let rounds = if bits <= 2048 { 8 } else { 2 };
        for family in ["ntt", "random"] {
            let m = Modulus::preset(family, bits).unwrap();
            assert_eq!(m.bits(), bits, "{family}:{bits}");
            assert!(is_probable_prime(m.value(), rounds), "{family}:{bits}");
        }
        let q = Modulus::preset("ntt", bits).unwrap().value().clone();
        let two_s = BigUint::one() << sim::modred::NTT_TWO_ADICITY;
        assert!(((q - 1u32) % two_s).is_zero());
    }
    assert!(!is_probable_prime(&BigUint::from(561u32), 8)); // Carmichael number
    let composite = BigUint::parse_bytes(b"340282366920938463463374607431768211457", 10).unwrap()
        * BigUint::from(65537u32);
    assert!(!is_probable_prime(&composite, 8));
}

#[test]
fn conventional_8192_bit_reducer_needs_about_11m_luts() {
    // DESIGN.md: one 64-entry table of n bits costs about n LUT6, so an 8192-bit reducer with
    // k = 6 needs ~11M LUTs for its tables.
    let m = Modulus::preset("ntt", 8192).unwrap();
    let p = Plan::new(&m, &DesignSpec::lut(16384, 6)).unwrap();
    assert_eq!(p.lut.as_ref().unwrap().groups.len(), 1366);
    let inv = Inventory::of_plan(&p);
    let d = DesignSpec {
        table_mem: TableMem::Lut,
        ..DesignSpec::lut(16384, 6)
    };
    let inv_lut = Inventory::of_plan(&Plan::new(&m, &d).unwrap());
    let (f, bram) = inv_lut.features(&Weights::default());
    assert_eq!(bram, 0.0);
    // 1366 tables x 8192 LUT6, plus the overflow rounds' small tables.
    assert!(
        (1366.0 * 8192.0..11.3e6).contains(&f.rom_luts),
        "{}",
        f.rom_luts
    );
    // With block RAM allowed the model may move tables out of LUTs, never to more area.
    let auto = inv
        .cost(&FpgaCoeffs::default(), &Weights::default())
        .area_lut_eq;
    let luts = inv_lut
        .cost(&FpgaCoeffs::default(), &Weights::default())
        .area_lut_eq;
    assert!(auto <= luts);
}

#[test]
fn latency_and_ii_follow_the_structure() {
    let m = Modulus::preset("ntt", 256).unwrap();
    // Conventional: input, table, ceil(log2(1 + 43)) = 6 tree levels, rounds, correction.
    let p = Plan::new(&m, &DesignSpec::lut(512, 6)).unwrap();
    assert_eq!(p.ii, 1);
    let tree = &p.lut.as_ref().unwrap().tree;
    assert_eq!(tree.levels.len(), 6);
    assert_eq!(p.latency, 2 + 6 + p.rounds.len() as u32 + 1);
    // Registering every second level removes three stages.
    let p2 = Plan::new(
        &m,
        &DesignSpec {
            regs_every: 2,
            ..DesignSpec::lut(512, 6)
        },
    )
    .unwrap();
    assert_eq!(p2.latency, p.latency - 3);
    // Iterative: II = cycles actually needed; latency = cycles + 2 + tail.
    let d = DesignSpec {
        arch: Arch::Iter,
        cycles: 8,
        ..DesignSpec::lut(512, 6)
    };
    let p = Plan::new(&m, &d).unwrap();
    let it = p.iter.as_ref().unwrap();
    assert_eq!((it.per_cycle, it.cycles, p.ii), (6, 8, 8));
    assert_eq!(p.latency, 8 + 2 + p.rounds.len() as u32 + 1);
    assert!(p.corrections <= 2);
}

#[test]
fn bad_designs_and_inputs_are_rejected() {
    assert_eq!(
        Modulus::parse("1000").unwrap_err(),
        ModredError::EvenModulus
    );
    assert!(matches!(
        Modulus::parse("0x7f").unwrap_err(),
        ModredError::ModulusWidth { bits: 7, .. }
    ));
    assert!(matches!(
        Modulus::parse("12a").unwrap_err(),
        ModredError::BadNumber(_)
    ));
    assert!(matches!(
        Modulus::parse("ntt:100").unwrap_err(),
        ModredError::UnknownPreset(_)
    ));
    let m = Modulus::preset("ntt", 128).unwrap();
    let bad_k = DesignSpec::lut(256, 13);
    assert!(matches!(
        Reducer::new(&m, &bad_k).unwrap_err(),
        ModredError::Parameter { name: "k", .. }
    ));
    assert!(matches!(
        Reducer::new(&m, &DesignSpec::lut(128, 6)).unwrap_err(),
        ModredError::Parameter {
            name: "input_bits",
            ..
        }
    ));
    let r = Reducer::new(&m, &DesignSpec::lut(256, 6)).unwrap();
    assert_eq!(
        r.reduce(&(BigUint::one() << 256)).unwrap_err(),
        ModredError::InputTooWide {
            bits: 257,
            width: 256
        }
    );
    // A hybrid with nothing left for one of its parts is infeasible, not silently another arch.
    let h = DesignSpec {
        arch: Arch::Hybrid,
        lut_share: 1.0,
        ..DesignSpec::lut(256, 6)
    };
    assert!(matches!(
        Plan::new(&m, &h).unwrap_err(),
        ModredError::Infeasible(_)
    ));
}

fn arb_design() -> impl Strategy<Value = DesignSpec> {
    (
        0usize..3,
        1u32..=9,
        1u32..=9,
        1u32..=20,
        0.05f64..0.95,
        0u32..25,
        0usize..3,
        1u32..=3,
        129u64..=700,
    )
        .prop_map(
            |(a, k, k_iter, cycles, lut_share, fusion, ar, regs_every, w)| DesignSpec {
                arch: [Arch::Lut, Arch::Iter, Arch::Hybrid][a],
                input_bits: w,
                k,
                k_iter,
                cycles,
                lut_share,
                fusion,
                arity: [Arity::Binary, Arity::Ternary, Arity::Csa][ar],
                regs_every,
                table_mem: TableMem::Auto,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Any buildable design point reduces exactly, for either preset family and any odd modulus.
    #[test]
    fn any_design_point_is_exact(d in arb_design(), seed in any::<u64>(), odd in any::<bool>()) {
        let m = if odd {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let q = random_below(&mut rng, 128) | (BigUint::one() << 127) | BigUint::one();
            Modulus::new(q).unwrap()
        } else {
            Modulus::preset("random", 128).unwrap()
        };
        let q = m.value().clone();
        let r = match Reducer::new(&m, &d) {
            Ok(r) => r,
            Err(ModredError::Infeasible(_)) => return Ok(()),
            Err(e) => panic!("{e}"),
        };
        let p = r.plan().unwrap();
        prop_assert!(p.corrections <= 2);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 1);
        let mut xs = edge_cases(&q, d.input_bits);
        xs.extend((0..200).map(|_| random_below(&mut rng, d.input_bits)));
        for x in xs {
            prop_assert_eq!(r.reduce(&x).unwrap(), &x % &q);
        }
    }
}
