//! The functional (bit-exact) reducers: the same additions, in the same widths, as the
//! hardware, on 64-bit limbs.

use num_bigint::BigUint;

use super::baseline::{BarrettPlan, MontgomeryPlan};
use super::design::{Arch, DesignSpec};
use super::plan::{Group, Plan};
use super::{ModredError, Modulus};

/// Memory the functional model may spend on tables.
const TABLE_LIMIT_BYTES: u64 = 2 << 30;

/// One table: `2^bits` entries of `limbs` 64-bit limbs, entry `g` = `(g 2^lsb) mod q`.
#[derive(Debug, Clone)]
struct Table {
    group: Group,
    entries: Vec<u64>,
}

/// A bit-exact reducer of any architecture.
#[derive(Debug, Clone)]
pub struct Reducer {
    modulus: Modulus,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Table(Box<TableReducer>),
    Barrett(BarrettPlan),
    Montgomery(MontgomeryPlan),
}

#[derive(Debug, Clone)]
struct TableReducer {
    plan: Plan,
    /// Limbs of an `n`-bit table entry.
    limbs: usize,
    /// Limbs of the accumulator (enough for every intermediate sum).
    acc_limbs: usize,
    main: Vec<Table>,
    rounds: Vec<Vec<Table>>,
    /// `j * q` for j = 1..=corrections, in `acc_limbs` limbs.
    multiples: Vec<Vec<u64>>,
}

fn to_limbs(x: &BigUint, limbs: usize) -> Vec<u64> {
    let mut v = x.to_u64_digits();
    v.resize(limbs, 0);
    v
}

fn build_table(q: &BigUint, group: Group, limbs: usize) -> Table {
    let entries = group
        .entries(q)
        .iter()
        .flat_map(|e| to_limbs(e, limbs))
        .collect();
    Table { group, entries }
}

/// Bits `[lsb, lsb + bits)` of a little-endian limb slice (`bits <= 32`).
#[inline]
fn field(x: &[u64], lsb: u64, bits: u32) -> usize {
    let i = (lsb / 64) as usize;
    let s = lsb % 64;
    let lo = x.get(i).copied().unwrap_or(0) >> s;
    let hi = if s > 0 {
        x.get(i + 1).copied().unwrap_or(0) << (64 - s)
    } else {
        0
    };
    ((lo | hi) & ((1u64 << bits) - 1)) as usize
}

/// `acc += add` over `add.len()` limbs, carrying into the rest of `acc`.
#[inline]
fn add_into(acc: &mut [u64], add: &[u64]) {
    let mut carry = 0u64;
    for (a, &b) in acc.iter_mut().zip(add) {
        let (s1, c1) = a.overflowing_add(b);
        let (s2, c2) = s1.overflowing_add(carry);
        *a = s2;
        carry = u64::from(c1) + u64::from(c2);
    }
    let mut i = add.len();
    while carry != 0 && i < acc.len() {
        let (s, c) = acc[i].overflowing_add(carry);
        acc[i] = s;
        carry = u64::from(c);
        i += 1;
    }
}

/// Keeps the low `n` bits of `x` (in place).
fn truncate(x: &mut [u64], n: u64) {
    let full = (n / 64) as usize;
    let rem = n % 64;
    for (i, l) in x.iter_mut().enumerate() {
        if i > full || (i == full && rem == 0) {
            *l = 0;
        } else if i == full {
            *l &= (1u64 << rem) - 1;
        }
    }
}

/// `a >= b` for equal-length limb slices.
fn ge(a: &[u64], b: &[u64]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x > y;
        }
    }
    true
}

/// `a -= b` for equal-length limb slices with `a >= b`.
fn sub_in_place(a: &mut [u64], b: &[u64]) {
    let mut borrow = 0u64;
    for (x, &y) in a.iter_mut().zip(b) {
        let (d1, b1) = x.overflowing_sub(y);
        let (d2, b2) = d1.overflowing_sub(borrow);
        *x = d2;
        borrow = u64::from(b1) + u64::from(b2);
    }
}

impl TableReducer {
    fn new(plan: Plan) -> Result<Self, ModredError> {
        let limbs = plan.n.div_ceil(64) as usize;
        let max_bits = plan
            .rounds
            .iter()
            .map(|r| r.in_bits)
            .chain([plan.fused_bound.bits(), plan.w, plan.correction_bits])
            .max()
            .unwrap_or(plan.w);
        let acc_limbs = (max_bits.div_ceil(64) + 1) as usize;
        let groups: Vec<Group> = plan.all_groups().copied().collect();
        let round_groups = plan.rounds.iter().flat_map(|r| r.groups.iter());
        let bytes: u64 = groups
            .iter()
            .chain(round_groups)
            .map(|g| (1u64 << g.bits) * limbs as u64 * 8)
            .sum();
        if bytes > TABLE_LIMIT_BYTES {
            return Err(ModredError::TooLarge {
                need_mib: bytes >> 20,
                limit_mib: TABLE_LIMIT_BYTES >> 20,
            });
        }
        let main = groups
            .iter()
            .map(|&g| build_table(&plan.q, g, limbs))
            .collect();
        let rounds = plan
            .rounds
            .iter()
            .map(|r| {
                r.groups
                    .iter()
                    .map(|&g| build_table(&plan.q, g, limbs))
                    .collect()
            })
            .collect();
        let multiples = (1..=plan.corrections)
            .map(|j| to_limbs(&(&plan.q * j), acc_limbs))
            .collect();
        Ok(TableReducer {
            plan,
            limbs,
            acc_limbs,
            main,
            rounds,
            multiples,
        })
    }

    fn reduce(&self, x: &[u64]) -> Vec<u64> {
        let n = self.plan.n;
        let mut acc = vec![0u64; self.acc_limbs];
        let low = x.len().min(self.acc_limbs);
        acc[..low].copy_from_slice(&x[..low]);
        truncate(&mut acc, n);
        let l = self.limbs;
        for t in &self.main {
            let g = field(x, t.group.lsb, t.group.bits);
            add_into(&mut acc, &t.entries[g * l..(g + 1) * l]);
        }
        let mut next = vec![0u64; self.acc_limbs];
        for round in &self.rounds {
            next.copy_from_slice(&acc);
            truncate(&mut next, n);
            for t in round {
                let g = field(&acc, t.group.lsb, t.group.bits);
                add_into(&mut next, &t.entries[g * l..(g + 1) * l]);
            }
            std::mem::swap(&mut acc, &mut next);
        }
        for m in self.multiples.iter().rev() {
            if ge(&acc, m) {
                sub_in_place(&mut acc, m);
                break;
            }
        }
        acc
    }
}

impl Reducer {
    /// Builds the reducer of design `d` for modulus `m` (tables included).
    pub fn new(m: &Modulus, d: &DesignSpec) -> Result<Reducer, ModredError> {
        let kind = match d.arch {
            Arch::Barrett => Kind::Barrett(BarrettPlan::new(m, d.input_bits)?),
            Arch::Montgomery => Kind::Montgomery(MontgomeryPlan::new(m, d.input_bits)?),
            _ => Kind::Table(Box::new(TableReducer::new(Plan::new(m, d)?)?)),
        };
        Ok(Reducer {
            modulus: m.clone(),
            kind,
        })
    }

    /// The table-based plan, if the design is table based.
    pub fn plan(&self) -> Option<&Plan> {
        match &self.kind {
            Kind::Table(t) => Some(&t.plan),
            _ => None,
        }
    }

    /// Declared input width.
    pub fn input_bits(&self) -> u64 {
        match &self.kind {
            Kind::Table(t) => t.plan.w,
            Kind::Barrett(b) => b.w,
            Kind::Montgomery(m) => m.w,
        }
    }

    /// `x mod q`. For Montgomery designs the hardware computes `x R^-1 mod q`
    /// ([`Reducer::hardware_output`]); this converts it back, outside the hardware.
    pub fn reduce(&self, x: &BigUint) -> Result<BigUint, ModredError> {
        let out = self.hardware_output(x)?;
        Ok(match &self.kind {
            Kind::Montgomery(m) => (out * &m.r_mod_q) % self.modulus.value(),
            _ => out,
        })
    }

    /// Exactly what the hardware outputs: `x mod q`, or `x R^-1 mod q` for Montgomery.
    pub fn hardware_output(&self, x: &BigUint) -> Result<BigUint, ModredError> {
        let w = self.input_bits();
        if x.bits() > w {
            return Err(ModredError::InputTooWide {
                bits: x.bits(),
                width: w,
            });
        }
        Ok(match &self.kind {
            Kind::Table(t) => {
                let limbs = to_limbs(x, (w.div_ceil(64)) as usize);
                let mut r = t.reduce(&limbs);
                r.truncate(t.limbs);
                BigUint::new(
                    r.iter()
                        .flat_map(|&l| [l as u32, (l >> 32) as u32])
                        .collect(),
                )
            }
            Kind::Barrett(b) => b.reduce(x),
            Kind::Montgomery(m) => m.redc(x),
        })
    }
}
