//! Barrett and Montgomery reducers, the baselines the table-based designs are compared with.

use num_bigint::BigUint;
use num_traits::One;

use super::design::check_input_width;
use super::{ModredError, Modulus};

/// Generalised Barrett reduction of `w`-bit inputs: `q1 = x >> (n-1)`,
/// `q3 = (q1 mu) >> (w-n+1)` with `mu = floor(2^w / q)`, `r = x - q3 q`, then at most two
/// subtractions of `q` (the quotient estimate is low by at most 2 for every `x < 2^w`).
#[derive(Debug, Clone, PartialEq)]
pub struct BarrettPlan {
    /// Modulus.
    pub q: BigUint,
    /// Modulus width.
    pub n: u64,
    /// Input width.
    pub w: u64,
    /// `floor(2^w / q)`.
    pub mu: BigUint,
}

impl BarrettPlan {
    /// Plans Barrett reduction of `w`-bit inputs modulo `m`.
    pub fn new(m: &Modulus, w: u64) -> Result<Self, ModredError> {
        let n = m.bits();
        check_input_width(n, w)?;
        let q = m.value().clone();
        let mu = (BigUint::one() << w) / &q;
        Ok(BarrettPlan { q, n, w, mu })
    }

    /// Widths of the two multiplications: `(q1 x mu)` kept high, `(q3 x q)` kept low (`n + 2`
    /// bits).
    pub fn multiplications(&self) -> [(u64, u64); 2] {
        let a = self.w - self.n + 1;
        [(a, self.mu.bits()), (a, self.n)]
    }

    /// The residue and the number of final subtractions it took (at most 2).
    pub fn reduce_counting(&self, x: &BigUint) -> (BigUint, u32) {
        let q1 = x >> (self.n - 1);
        let q3 = (q1 * &self.mu) >> (self.w - self.n + 1);
        // The hardware computes r modulo 2^(n+2); r < 3q < 2^(n+2) makes that exact.
        let modulus = BigUint::one() << (self.n + 2);
        let mut r = ((x % &modulus) + &modulus - ((q3 * &self.q) % &modulus)) % &modulus;
        let mut subs = 0;
        while r >= self.q {
            r -= &self.q;
            subs += 1;
        }
        (r, subs)
    }

    /// The residue.
    pub fn reduce(&self, x: &BigUint) -> BigUint {
        self.reduce_counting(x).0
    }
}

/// Montgomery reduction (REDC) of `w`-bit inputs with `R = 2^(w-n+1)` (so every input is below
/// `q R`): `m = ((x mod R) q') mod R`, `t = (x + m q) / R < 2q`, one conditional subtraction.
/// The output is `x R^-1 mod q` (Montgomery domain).
#[derive(Debug, Clone, PartialEq)]
pub struct MontgomeryPlan {
    /// Modulus.
    pub q: BigUint,
    /// Modulus width.
    pub n: u64,
    /// Input width.
    pub w: u64,
    /// `log2 R`.
    pub r_bits: u64,
    /// `-q^-1 mod R`.
    pub q_prime: BigUint,
    /// `R mod q` (to convert an output back to `x mod q`).
    pub r_mod_q: BigUint,
}

impl MontgomeryPlan {
    /// Plans Montgomery reduction of `w`-bit inputs modulo `m`.
    pub fn new(m: &Modulus, w: u64) -> Result<Self, ModredError> {
        let n = m.bits();
        check_input_width(n, w)?;
        let q = m.value().clone();
        let r_bits = w - n + 1;
        let r = BigUint::one() << r_bits;
        // Newton iteration for q^-1 mod 2^r_bits: each step doubles the correct low bits.
        let mut inv = BigUint::one();
        let mut correct = 1;
        while correct < r_bits {
            let two = BigUint::from(2u32);
            let qi = (&q * &inv) % &r;
            inv = (&inv * ((&two + &r) - qi)) % &r;
            correct *= 2;
        }
        let q_prime = (&r - inv) % &r;
        let r_mod_q = &r % &q;
        Ok(MontgomeryPlan {
            q,
            n,
            w,
            r_bits,
            q_prime,
            r_mod_q,
        })
    }

    /// Widths of the two multiplications: `(x mod R) x q'` kept low (`r` bits), `m x q` full.
    pub fn multiplications(&self) -> [(u64, u64); 2] {
        [(self.r_bits, self.r_bits), (self.r_bits, self.n)]
    }

    /// `x R^-1 mod q`.
    pub fn redc(&self, x: &BigUint) -> BigUint {
        let mask = (BigUint::one() << self.r_bits) - 1u32;
        let m = ((x & &mask) * &self.q_prime) & &mask;
        let t = (x + m * &self.q) >> self.r_bits;
        if t >= self.q {
            t - &self.q
        } else {
            t
        }
    }
}
