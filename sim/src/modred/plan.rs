//! The structure of a table-based reducer: which bit groups go to which tables, the adder trees
//! with their widths and pipeline registers, the accumulator, the overflow rounds and the final
//! correction, with the value bounds that size every signal. The functional model, the cost
//! model and the Verilog generator all read the same plan, so the three cannot disagree.

use num_bigint::BigUint;
use num_traits::{One, ToPrimitive};

use super::design::{check_input_width, Arch, Arity, DesignSpec, TableMem, MAX_OVERFLOW_BITS};
use super::{ModredError, Modulus};

/// A group of input bits that indexes one table: `T[g] = (g 2^lsb) mod q`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    /// Position of the group's lowest bit in the value being reduced.
    pub lsb: u64,
    /// Width of the group (the table has `2^bits` entries).
    pub bits: u32,
}

impl Group {
    /// The table's entries, `(g 2^lsb) mod q` for `g = 0 .. 2^bits`, each from the previous one
    /// by one modular addition.
    pub fn entries(&self, q: &BigUint) -> Vec<BigUint> {
        let base = (BigUint::one() << self.lsb) % q;
        let mut e = BigUint::ZERO;
        (0..1u64 << self.bits)
            .map(|_| {
                let v = e.clone();
                e += &base;
                if e >= *q {
                    e -= q;
                }
                v
            })
            .collect()
    }
}

/// One operation of an adder-tree level, on operands of the previous level (by index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeNode {
    /// The operand passes through unchanged.
    Pass(usize),
    /// A carry-propagate adder of two or three operands.
    Add(Vec<usize>),
    /// A 3:2 carry-save compressor; produces two operands (sum word, carry word).
    Csa([usize; 3]),
}

/// One level of an adder tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeLevel {
    /// Operations, in output order.
    pub nodes: Vec<TreeNode>,
    /// Widths of the level's output operands.
    pub widths: Vec<u64>,
    /// Whether the level's outputs are registered.
    pub registered: bool,
}

/// A pipelined multi-operand adder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    /// Widths of the input operands.
    pub leaf_widths: Vec<u64>,
    /// Levels from the leaves to the single output.
    pub levels: Vec<TreeLevel>,
    /// Upper bound of the sum.
    pub sum_bound: BigUint,
}

impl Tree {
    /// Builds the tree over operands with the given upper bounds. A register follows every
    /// `regs_every`-th level and the last one.
    pub fn build(leaf_bounds: &[BigUint], arity: Arity, regs_every: u32) -> Tree {
        let sum_bound: BigUint = leaf_bounds.iter().sum();
        let total_bits = sum_bound.bits().max(1);
        let leaf_widths: Vec<u64> = match arity {
            Arity::Csa => vec![total_bits; leaf_bounds.len()],
            _ => leaf_bounds.iter().map(|b| b.bits().max(1)).collect(),
        };
        let mut bounds: Vec<BigUint> = leaf_bounds.to_vec();
        let mut widths = leaf_widths.clone();
        let mut levels = Vec::new();
        while widths.len() > 1 {
            let n = widths.len();
            let mut nodes = Vec::new();
            let mut next_bounds = Vec::new();
            let mut next_widths = Vec::new();
            match arity {
                Arity::Binary | Arity::Ternary => {
                    let a = if arity == Arity::Binary { 2 } else { 3 };
                    let mut i = 0;
                    while i < n {
                        let hi = (i + a).min(n);
                        if hi - i == 1 {
                            nodes.push(TreeNode::Pass(i));
                            next_bounds.push(bounds[i].clone());
                            next_widths.push(widths[i]);
                        } else {
                            let b: BigUint = bounds[i..hi].iter().sum();
                            next_widths.push(b.bits().max(1));
                            next_bounds.push(b);
                            nodes.push(TreeNode::Add((i..hi).collect()));
                        }
                        i = hi;
                    }
                }
                Arity::Csa => {
                    if n == 2 {
                        nodes.push(TreeNode::Add(vec![0, 1]));
                        next_widths.push(total_bits);
                        next_bounds.push(sum_bound.clone());
                    } else {
                        let mut i = 0;
                        while i < n {
                            if i + 3 <= n {
                                nodes.push(TreeNode::Csa([i, i + 1, i + 2]));
                                next_widths.extend([total_bits, total_bits]);
                                next_bounds.extend([sum_bound.clone(), sum_bound.clone()]);
                                i += 3;
                            } else {
                                nodes.push(TreeNode::Pass(i));
                                next_widths.push(total_bits);
                                next_bounds.push(sum_bound.clone());
                                i += 1;
                            }
                        }
                    }
                }
            }
            levels.push(TreeLevel {
                nodes,
                widths: next_widths.clone(),
                registered: false,
            });
            bounds = next_bounds;
            widths = next_widths;
        }
        let depth = levels.len();
        for (i, l) in levels.iter_mut().enumerate() {
            l.registered = (i + 1) % regs_every as usize == 0 || i + 1 == depth;
        }
        Tree {
            leaf_widths,
            levels,
            sum_bound,
        }
    }

    /// Number of register stages (0 for a single operand).
    pub fn stages(&self) -> u32 {
        self.levels.iter().filter(|l| l.registered).count() as u32
    }

    /// Width of the output.
    pub fn out_width(&self) -> u64 {
        self.levels
            .last()
            .map(|l| l.widths[0])
            .unwrap_or_else(|| self.leaf_widths.first().copied().unwrap_or(1))
    }
}

/// The parallel-table part.
#[derive(Debug, Clone, PartialEq)]
pub struct LutPlan {
    /// One table per group.
    pub groups: Vec<Group>,
    /// Whether the low `n` bits of the input are an operand of the tree (conventional design);
    /// in iterative and hybrid designs they initialise the accumulator instead.
    pub with_low: bool,
    /// The adder tree over `[low,] T_0, T_1, ...`.
    pub tree: Tree,
    /// Clock edge (counting the input register as edge 1) at which the partial sum is registered.
    pub ready_edge: u32,
}

/// The iterative unit: `per_cycle` position-indexed tables, each `2^k x cycles` entries deep,
/// read once per cycle for `cycles` cycles and accumulated.
#[derive(Debug, Clone, PartialEq)]
pub struct IterPlan {
    /// Digit width.
    pub k: u32,
    /// Tables read per cycle.
    pub per_cycle: u32,
    /// Cycles per result.
    pub cycles: u32,
    /// Groups in processing order: cycle `t` reads groups `t*per_cycle .. (t+1)*per_cycle`
    /// (slots past the end read zero).
    pub groups: Vec<Group>,
    /// Upper bound of the accumulator's final value.
    pub acc_bound: BigUint,
}

impl IterPlan {
    /// Width of the accumulator register.
    pub fn acc_bits(&self) -> u64 {
        self.acc_bound.bits()
    }
}

/// When the parallel-table partial sum joins the accumulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fusion {
    /// No fusion (conventional or purely iterative design).
    None,
    /// Added into the accumulator at this iteration.
    At(u32),
    /// Added by a separate adder after the last iteration.
    After,
}

/// One overflow round: `S' = (S mod 2^n) + sum_j T_j[bits of S above n]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Round {
    /// Width of the round's input.
    pub in_bits: u64,
    /// Table groups over the input's bits above `n`.
    pub groups: Vec<Group>,
    /// Upper bound of the round's output.
    pub out_bound: BigUint,
}

/// The full structure of a table-based reducer.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Modulus.
    pub q: BigUint,
    /// Modulus width.
    pub n: u64,
    /// Input width.
    pub w: u64,
    /// Architecture (lut, iter or hybrid).
    pub arch: Arch,
    /// Adder arity.
    pub arity: Arity,
    /// Table storage.
    pub table_mem: TableMem,
    /// The parallel-table part (conventional and hybrid).
    pub lut: Option<LutPlan>,
    /// The iterative part (iterative and hybrid).
    pub iter: Option<IterPlan>,
    /// When the two parts are fused.
    pub fusion: Fusion,
    /// Upper bound of the fused sum, before the overflow rounds.
    pub fused_bound: BigUint,
    /// Overflow rounds, one pipeline stage each.
    pub rounds: Vec<Round>,
    /// Largest number of modulus subtractions the correction stage may need (0..=2).
    pub corrections: u32,
    /// Width of the correction stage's input.
    pub correction_bits: u64,
    /// Cycles from the input register to the output register, both counted.
    pub latency: u32,
    /// Initiation interval in cycles.
    pub ii: u32,
}

fn groups_over(lsb: u64, end: u64, k: u32) -> Vec<Group> {
    let mut out = Vec::new();
    let mut p = lsb;
    while p < end {
        let bits = (end - p).min(k as u64) as u32;
        out.push(Group { lsb: p, bits });
        p += bits as u64;
    }
    out
}

impl Plan {
    /// Plans a table-based design (`lut`, `iter` or `hybrid`) for modulus `m`.
    pub fn new(m: &Modulus, d: &DesignSpec) -> Result<Plan, ModredError> {
        d.validate()?;
        if !d.arch.is_table_based() {
            return Err(ModredError::Infeasible(format!(
                "{} is not a table-based architecture",
                d.arch
            )));
        }
        let q = m.value().clone();
        let n = m.bits();
        let w = d.input_bits;
        check_input_width(n, w)?;
        let upper = w - n;
        let lut_bits = match d.arch {
            Arch::Lut => upper,
            Arch::Iter => 0,
            _ => {
                let groups = (d.lut_share * upper as f64 / d.k as f64).round() as u64;
                let bits = (groups * d.k as u64).min(upper);
                if bits == 0 || bits >= upper {
                    return Err(ModredError::Infeasible(format!(
                        "lut_share = {} leaves {} of the {upper} bits above the modulus to the tables; a hybrid needs both parts (use arch = lut or iter)",
                        d.lut_share, bits
                    )));
                }
                bits
            }
        };
        let qm1 = &q - 1u32;
        let low_bound = (BigUint::one() << n) - 1u32;

        // Parallel tables.
        let lut = if lut_bits > 0 {
            let groups = groups_over(n, n + lut_bits, d.k);
            let with_low = d.arch == Arch::Lut;
            let mut leaves = Vec::new();
            if with_low {
                leaves.push(low_bound.clone());
            }
            leaves.extend(groups.iter().map(|_| qm1.clone()));
            let mut tree = Tree::build(&leaves, d.arity, d.regs_every);
            if tree.levels.is_empty() {
                // A single table: its registered output is the partial sum, held one more
                // cycle so that it outlives the accumulator's last iteration.
                tree.levels.push(TreeLevel {
                    nodes: vec![TreeNode::Pass(0)],
                    widths: vec![tree.leaf_widths[0]],
                    registered: true,
                });
            }
            let ready_edge = 2 + tree.stages();
            Some(LutPlan {
                groups,
                with_low,
                tree,
                ready_edge,
            })
        } else {
            None
        };

        // Iterative unit.
        let (iter, fusion) = if lut_bits < upper {
            let groups = groups_over(n + lut_bits, w, d.k_iter);
            let m = groups.len() as u32;
            let per_cycle = m.div_ceil(d.cycles);
            let cycles = m.div_ceil(per_cycle);
            let stages = lut.as_ref().map(|l| l.tree.stages()).unwrap_or(0);
            if stages > cycles {
                return Err(ModredError::Infeasible(format!(
                    "the parallel tables need {stages} pipeline stages but the iterative part finishes in {cycles} cycles; lower lut_share, raise regs_every or raise cycles"
                )));
            }
            let fusion = match &lut {
                None => Fusion::None,
                Some(_) => {
                    let t = d.fusion.max(stages);
                    if t < cycles {
                        Fusion::At(t)
                    } else {
                        Fusion::After
                    }
                }
            };
            let mut acc_bound = &low_bound + &qm1 * BigUint::from(m);
            if let (Fusion::At(_), Some(l)) = (fusion, &lut) {
                acc_bound += &l.tree.sum_bound;
            }
            (
                Some(IterPlan {
                    k: d.k_iter,
                    per_cycle,
                    cycles,
                    groups,
                    acc_bound,
                }),
                fusion,
            )
        } else {
            (None, Fusion::None)
        };

        let fused_bound = match (&lut, &iter) {
            (Some(l), None) => l.tree.sum_bound.clone(),
            (None, Some(i)) => i.acc_bound.clone(),
            (Some(l), Some(i)) => match fusion {
                Fusion::After => &i.acc_bound + &l.tree.sum_bound,
                _ => i.acc_bound.clone(),
            },
            (None, None) => unreachable!("w > n gives at least one group"),
        };

        // Overflow rounds until at most two subtractions remain.
        let mut rounds = Vec::new();
        let mut bound = fused_bound.clone();
        while (&bound / &q) > BigUint::from(2u32) {
            let in_bits = bound.bits();
            let groups = groups_over(n, in_bits, MAX_OVERFLOW_BITS);
            let out_bound = &low_bound + &qm1 * BigUint::from(groups.len());
            rounds.push(Round {
                in_bits,
                groups,
                out_bound: out_bound.clone(),
            });
            bound = out_bound;
        }
        let corrections = (&bound / &q).to_u32().unwrap_or(u32::MAX);
        let tail = rounds.len() as u32 + 1;
        let (latency, ii) = match (&lut, &iter) {
            (Some(l), None) => (l.ready_edge + tail, 1),
            (_, Some(i)) => {
                let late = u32::from(fusion == Fusion::After);
                (i.cycles + 2 + late + tail, i.cycles)
            }
            (None, None) => unreachable!(),
        };
        Ok(Plan {
            q,
            n,
            w,
            arch: d.arch,
            arity: d.arity,
            table_mem: d.table_mem,
            lut,
            iter,
            fusion,
            fused_bound,
            rounds,
            corrections,
            correction_bits: bound.bits().max(n),
            latency,
            ii,
        })
    }

    /// Every table group of the design in a fixed order (parallel tables, then the iterative
    /// unit's groups), i.e. every term of the fused sum besides the low part.
    pub fn all_groups(&self) -> impl Iterator<Item = &Group> {
        let l = self.lut.iter().flat_map(|l| l.groups.iter());
        let i = self.iter.iter().flat_map(|i| i.groups.iter());
        l.chain(i)
    }
}
