//! Verilog for table-based reducers, built as `rtl` syntax trees from the same [`Plan`] the
//! functional and cost models read, and a self-checking testbench fed by the golden model.
//!
//! The module `top` has ports `clk`, `rst` (synchronous, clears the valid pipeline), `in_valid`,
//! `x[w-1:0]`, `out_valid`, `r[n-1:0]`. An input presented with `in_valid` is captured at the
//! next rising edge; its residue appears in `r` with `out_valid` exactly `latency - 1` edges
//! later. Inputs may be presented every `ii` cycles.

use num_bigint::BigUint;
use num_traits::Zero;
use rtl::ast::{BinOp, Expr, Item, Module, Port, Stmt};
use sim::modred::{Fusion, Group, Plan, TreeNode};

/// How tables are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RomStyle {
    /// `case` statements (synthesis maps them to logic).
    Case,
    /// Memories loaded by `$readmemh` from `.hex` files next to the Verilog.
    Memh,
}

/// Generated files: Verilog sources and hex data, by file name.
#[derive(Debug, Clone, Default)]
pub struct Files {
    /// (file name, contents).
    pub files: Vec<(String, String)>,
}

impl Files {
    /// Writes every file into `dir`.
    pub fn write(&self, dir: &std::path::Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for (name, text) in &self.files {
            std::fs::write(dir.join(name), text)?;
        }
        Ok(())
    }
}

fn hex(width: u64, v: &BigUint) -> Expr {
    Expr::Hex {
        width,
        digits: format!("{v:x}"),
    }
}

/// `e` (of width `from`) zero-extended to `to` bits.
fn zext(e: Expr, from: u64, to: u64) -> Expr {
    if to > from {
        Expr::Concat(vec![Expr::lit(to - from, 0), e])
    } else {
        e
    }
}

fn bits_for(v: u64) -> u64 {
    (64 - v.leading_zeros() as u64).max(1)
}

fn slice(name: &str, g: &Group) -> Expr {
    Expr::Slice(name.into(), g.lsb + g.bits as u64 - 1, g.lsb)
}

struct Gen<'a> {
    plan: &'a Plan,
    top: String,
    style: RomStyle,
    items: Vec<Item>,
    ff: Vec<Stmt>,
    files: Vec<(String, String)>,
    roms: usize,
}

impl Gen<'_> {
    fn reg(&mut self, name: &str, width: u64) {
        self.items.push(Item::Reg {
            name: name.into(),
            width,
        });
    }

    fn wire(&mut self, name: &str, width: u64, value: Expr) {
        self.items.push(Item::Wire {
            name: name.into(),
            width,
            value: Some(value),
        });
    }

    /// A ROM of `entries` (`n` bits each) read at `addr` (`addr_bits` wide) into `out`:
    /// registered (`<=` in the clocked block) or combinational.
    fn rom(
        &mut self,
        out: &str,
        addr: Expr,
        addr_bits: u64,
        entries: &[BigUint],
        registered: bool,
    ) {
        let n = self.plan.n;
        let id = self.roms;
        self.roms += 1;
        self.reg(out, n);
        let assign = |lhs: &str, rhs: Expr| {
            if registered {
                Stmt::NonBlocking(Expr::id(lhs), rhs)
            } else {
                Stmt::Blocking(Expr::id(lhs), rhs)
            }
        };
        let stmt = match self.style {
            RomStyle::Case => Stmt::Case {
                sel: addr,
                arms: entries
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| !v.is_zero())
                    .map(|(i, v)| (Expr::lit(addr_bits, i as u64), vec![assign(out, hex(n, v))]))
                    .collect(),
                default: vec![assign(out, Expr::lit(n, 0))],
            },
            RomStyle::Memh => {
                let mem = format!("rom{id}");
                let file = format!("{}_rom{id}.hex", self.top);
                let text: String = entries.iter().map(|v| format!("{v:x}\n")).collect();
                self.files.push((file.clone(), text));
                self.items.push(Item::Memory {
                    name: mem.clone(),
                    width: n,
                    depth: entries.len() as u64,
                    init_file: Some(file),
                });
                assign(out, Expr::index(&mem, addr))
            }
        };
        if registered {
            self.ff.push(stmt);
        } else {
            self.items.push(Item::AlwaysComb(vec![stmt]));
        }
    }

    /// The parallel tables and their adder tree; returns (sum signal, width).
    fn lut_part(&mut self) -> Option<(String, u64)> {
        let plan = self.plan;
        let l = plan.lut.as_ref()?;
        let n = plan.n;
        let mut ops: Vec<(String, u64)> = Vec::new();
        if l.with_low {
            self.reg("lo_r", n);
            self.ff.push(Stmt::NonBlocking(
                Expr::id("lo_r"),
                Expr::Slice("x_r".into(), n - 1, 0),
            ));
            ops.push(("lo_r".into(), n));
        }
        for (i, g) in l.groups.iter().enumerate() {
            let name = format!("t{i}");
            let entries = g.entries(&plan.q);
            self.rom(&name, slice("x_r", g), g.bits as u64, &entries, true);
            ops.push((name, n));
        }
        for (li, level) in l.tree.levels.iter().enumerate() {
            let mut next = Vec::new();
            let mut oi = 0;
            for (ni, node) in level.nodes.iter().enumerate() {
                let mut outs: Vec<(String, Expr)> = Vec::new();
                match node {
                    TreeNode::Pass(i) => {
                        let w = level.widths[oi];
                        let (s, sw) = &ops[*i];
                        outs.push((format!("s{li}_{oi}"), zext(Expr::id(s.clone()), *sw, w)));
                    }
                    TreeNode::Add(ix) => {
                        let w = level.widths[oi];
                        let terms = ix
                            .iter()
                            .map(|&i| zext(Expr::id(ops[i].0.clone()), ops[i].1, w))
                            .collect();
                        outs.push((format!("s{li}_{oi}"), Expr::sum(terms)));
                    }
                    TreeNode::Csa([a, b, c]) => {
                        let w = level.widths[oi];
                        let [ea, eb, ec] =
                            [a, b, c].map(|&i| zext(Expr::id(ops[i].0.clone()), ops[i].1, w));
                        let maj = format!("m{li}_{ni}");
                        let and = |x: &Expr, y: &Expr| Expr::bin(BinOp::And, x.clone(), y.clone());
                        let m = Expr::bin(
                            BinOp::Or,
                            Expr::bin(BinOp::Or, and(&ea, &eb), and(&ea, &ec)),
                            and(&eb, &ec),
                        );
                        self.items
                            .push(Item::Comment(format!("3:2 compressor {li}.{ni}")));
                        // The top bit of the majority word would shift out: only w-1 bits.
                        let m = trunc(m, w, w - 1, &format!("mf{li}_{ni}"), self);
                        self.wire(&maj, w - 1, m);
                        let sum = Expr::bin(BinOp::Xor, Expr::bin(BinOp::Xor, ea, eb), ec);
                        outs.push((format!("s{li}_{oi}"), sum));
                        outs.push((
                            format!("s{li}_{}", oi + 1),
                            Expr::Concat(vec![Expr::id(maj), Expr::lit(1, 0)]),
                        ));
                    }
                }
                for (name, value) in outs {
                    let w = level.widths[oi];
                    if level.registered {
                        self.reg(&name, w);
                        self.ff
                            .push(Stmt::NonBlocking(Expr::id(name.clone()), value));
                    } else {
                        self.wire(&name, w, value);
                    }
                    next.push((name, w));
                    oi += 1;
                }
            }
            ops = next;
        }
        ops.into_iter().next()
    }
}

/// Truncates a `from`-bit expression to its low `to` bits through a helper wire.
fn trunc(e: Expr, from: u64, to: u64, helper: &str, g: &mut Gen<'_>) -> Expr {
    if to >= from {
        return e;
    }
    g.items
        .push(Item::Comment("verilator lint_off UNUSEDSIGNAL".into()));
    g.wire(helper, from, e);
    g.items
        .push(Item::Comment("verilator lint_on UNUSEDSIGNAL".into()));
    Expr::Slice(helper.into(), to - 1, 0)
}

/// The Verilog of a table-based design, with its ROM files when `style` is [`RomStyle::Memh`].
pub fn design(plan: &Plan, top: &str, style: RomStyle) -> Files {
    let n = plan.n;
    let w = plan.w;
    let mut g = Gen {
        plan,
        top: top.into(),
        style,
        items: Vec::new(),
        ff: Vec::new(),
        files: Vec::new(),
        roms: 0,
    };
    g.reg("x_r", w);
    // The sum entering the overflow rounds, its width, and its valid flag.
    let (sum, sum_w, valid): (String, u64, String);
    let mut control: Vec<Stmt> = Vec::new();
    match &plan.iter {
        None => {
            // Conventional: a valid shift register tracks the input through the tables and tree.
            let l = plan.lut.as_ref().expect("lut part");
            let depth = l.ready_edge as u64;
            g.reg("vp", depth);
            control.push(Stmt::If(
                Expr::id("rst"),
                vec![Stmt::NonBlocking(Expr::id("vp"), Expr::lit(depth, 0))],
                vec![Stmt::NonBlocking(
                    Expr::id("vp"),
                    Expr::Concat(vec![
                        Expr::Slice("vp".into(), depth - 2, 0),
                        Expr::id("in_valid"),
                    ]),
                )],
            ));
            g.ff.push(Stmt::If(
                Expr::id("in_valid"),
                vec![Stmt::NonBlocking(Expr::id("x_r"), Expr::id("x"))],
                vec![],
            ));
            let (s, sw) = g.lut_part().expect("lut tree");
            sum = s;
            sum_w = sw;
            valid = format!("vp[{}]", depth - 1);
        }
        Some(it) => {
            let c = it.cycles as u64;
            let cb = bits_for(c - 1);
            let last = Expr::lit(cb, c - 1);
            g.reg("busy", 1);
            g.reg("cnt", cb);
            g.wire(
                "accept",
                1,
                Expr::bin(
                    BinOp::LogAnd,
                    Expr::id("in_valid"),
                    Expr::bin(
                        BinOp::LogOr,
                        Expr::bin(BinOp::Eq, Expr::id("busy"), Expr::lit(1, 0)),
                        Expr::bin(BinOp::Eq, Expr::id("cnt"), last.clone()),
                    ),
                ),
            );
            control.push(Stmt::If(
                Expr::id("rst"),
                vec![
                    Stmt::NonBlocking(Expr::id("busy"), Expr::lit(1, 0)),
                    Stmt::NonBlocking(Expr::id("cnt"), Expr::lit(cb, 0)),
                ],
                vec![Stmt::If(
                    Expr::id("accept"),
                    vec![
                        Stmt::NonBlocking(Expr::id("busy"), Expr::lit(1, 1)),
                        Stmt::NonBlocking(Expr::id("cnt"), Expr::lit(cb, 0)),
                    ],
                    vec![Stmt::If(
                        Expr::id("busy"),
                        vec![Stmt::If(
                            Expr::bin(BinOp::Eq, Expr::id("cnt"), last.clone()),
                            vec![Stmt::NonBlocking(Expr::id("busy"), Expr::lit(1, 0))],
                            vec![Stmt::NonBlocking(
                                Expr::id("cnt"),
                                Expr::bin(BinOp::Add, Expr::id("cnt"), Expr::lit(cb, 1)),
                            )],
                        )],
                        vec![],
                    )],
                )],
            ));
            g.ff.push(Stmt::If(
                Expr::id("accept"),
                vec![Stmt::NonBlocking(Expr::id("x_r"), Expr::id("x"))],
                vec![],
            ));
            let lut = g.lut_part();
            // Iterative unit: per slot, the digit of the current iteration, then the ROM.
            let k = it.k as u64;
            let per = it.per_cycle as usize;
            let mut rq = Vec::new();
            for j in 0..per {
                let d = format!("d{j}");
                g.reg(&d, k);
                let arms = (0..it.cycles as usize)
                    .filter_map(|t| {
                        let gi = it.groups.get(t * per + j)?;
                        let v = zext(slice("x_r", gi), gi.bits as u64, k);
                        Some((
                            Expr::lit(cb, t as u64),
                            vec![Stmt::Blocking(Expr::id(d.clone()), v)],
                        ))
                    })
                    .collect();
                g.items.push(Item::AlwaysComb(vec![Stmt::Case {
                    sel: Expr::id("cnt"),
                    arms,
                    default: vec![Stmt::Blocking(Expr::id(d.clone()), Expr::lit(k, 0))],
                }]));
                let mut entries = Vec::with_capacity((c << k) as usize);
                for t in 0..it.cycles as usize {
                    match it.groups.get(t * per + j) {
                        Some(gi) => {
                            let mut e = gi.entries(&plan.q);
                            e.resize(1 << k, BigUint::zero());
                            entries.extend(e);
                        }
                        None => entries.extend((0..1u64 << k).map(|_| BigUint::zero())),
                    }
                }
                let (addr, abits) = if c > 1 {
                    (
                        Expr::Concat(vec![Expr::id("cnt"), Expr::id(d.clone())]),
                        cb + k,
                    )
                } else {
                    (Expr::id(d.clone()), k)
                };
                if g.style == RomStyle::Case || c > 1 {
                    // Depth of the Verilog memory must cover the whole address range.
                    entries.resize(1 << abits, BigUint::zero());
                }
                let name = format!("rq{j}");
                g.rom(&name, addr, abits, &entries, true);
                rq.push(name);
            }
            g.reg("tq", cb);
            g.reg("qv", 1);
            g.reg("lo_q", n);
            g.ff.push(Stmt::NonBlocking(Expr::id("tq"), Expr::id("cnt")));
            control.push(Stmt::If(
                Expr::id("rst"),
                vec![Stmt::NonBlocking(Expr::id("qv"), Expr::lit(1, 0))],
                vec![Stmt::NonBlocking(Expr::id("qv"), Expr::id("busy"))],
            ));
            g.ff.push(Stmt::If(
                Expr::bin(BinOp::Eq, Expr::id("cnt"), Expr::lit(cb, 0)),
                vec![Stmt::NonBlocking(
                    Expr::id("lo_q"),
                    Expr::Slice("x_r".into(), n - 1, 0),
                )],
                vec![],
            ));
            // Accumulator.
            let aw = it.acc_bits();
            g.reg("acc", aw);
            g.reg("acc_v", 1);
            let init = Expr::cond(
                Expr::bin(BinOp::Eq, Expr::id("tq"), Expr::lit(cb, 0)),
                zext(Expr::id("lo_q"), n, aw),
                Expr::id("acc"),
            );
            let mut terms = vec![init];
            terms.extend(rq.iter().map(|r| zext(Expr::id(r.clone()), n, aw)));
            if let (Fusion::At(f), Some((ls, lw))) = (plan.fusion, &lut) {
                terms.push(Expr::cond(
                    Expr::bin(BinOp::Eq, Expr::id("tq"), Expr::lit(cb, f as u64)),
                    zext(Expr::id(ls.clone()), *lw, aw),
                    Expr::lit(aw, 0),
                ));
            }
            g.ff.push(Stmt::If(
                Expr::id("qv"),
                vec![Stmt::NonBlocking(Expr::id("acc"), Expr::sum(terms))],
                vec![],
            ));
            control.push(Stmt::If(
                Expr::id("rst"),
                vec![Stmt::NonBlocking(Expr::id("acc_v"), Expr::lit(1, 0))],
                vec![Stmt::NonBlocking(
                    Expr::id("acc_v"),
                    Expr::bin(
                        BinOp::LogAnd,
                        Expr::id("qv"),
                        Expr::bin(BinOp::Eq, Expr::id("tq"), last),
                    ),
                )],
            ));
            match (plan.fusion, &lut) {
                (Fusion::After, Some((ls, lw))) => {
                    let fw = plan.fused_bound.bits();
                    g.reg("fz", fw);
                    g.reg("fz_v", 1);
                    g.ff.push(Stmt::NonBlocking(
                        Expr::id("fz"),
                        Expr::bin(
                            BinOp::Add,
                            zext(Expr::id("acc"), aw, fw),
                            zext(Expr::id(ls.clone()), *lw, fw),
                        ),
                    ));
                    control.push(Stmt::If(
                        Expr::id("rst"),
                        vec![Stmt::NonBlocking(Expr::id("fz_v"), Expr::lit(1, 0))],
                        vec![Stmt::NonBlocking(Expr::id("fz_v"), Expr::id("acc_v"))],
                    ));
                    sum = "fz".into();
                    sum_w = fw;
                    valid = "fz_v".into();
                }
                _ => {
                    sum = "acc".into();
                    sum_w = aw;
                    valid = "acc_v".into();
                }
            }
        }
    }
    // Overflow rounds.
    let (mut s, mut sw, mut v) = (sum, sum_w, valid);
    for (ri, round) in plan.rounds.iter().enumerate() {
        let ow = round.out_bound.bits();
        let mut terms = vec![zext(Expr::Slice(s.clone(), n - 1, 0), n, ow)];
        for (gi, grp) in round.groups.iter().enumerate() {
            let name = format!("ov{ri}_{gi}");
            let entries = grp.entries(&plan.q);
            let addr = Expr::Slice(
                s.clone(),
                (grp.lsb + grp.bits as u64 - 1).min(sw - 1),
                grp.lsb,
            );
            g.rom(&name, addr, grp.bits as u64, &entries, false);
            terms.push(zext(Expr::id(name), n, ow));
        }
        let name = format!("rd{ri}");
        let vn = format!("rd{ri}_v");
        g.reg(&name, ow);
        g.reg(&vn, 1);
        g.ff.push(Stmt::NonBlocking(Expr::id(name.clone()), Expr::sum(terms)));
        control.push(Stmt::If(
            Expr::id("rst"),
            vec![Stmt::NonBlocking(Expr::id(vn.clone()), Expr::lit(1, 0))],
            vec![Stmt::NonBlocking(Expr::id(vn.clone()), Expr::id(v.clone()))],
        ));
        s = name;
        sw = ow;
        v = vn;
    }
    // Final correction: subtract the largest multiple of q (at most 2q) that fits.
    let wc = sw;
    let mut result = Expr::Slice(s.clone(), n - 1, 0);
    if plan.corrections > 0 {
        g.items
            .push(Item::Comment("verilator lint_off UNUSEDSIGNAL".into()));
        for j in 1..=plan.corrections {
            let d = format!("dq{j}");
            g.wire(
                &d,
                wc + 1,
                Expr::bin(
                    BinOp::Sub,
                    zext(Expr::id(s.clone()), wc, wc + 1),
                    hex(wc + 1, &(&plan.q * j)),
                ),
            );
        }
        g.items
            .push(Item::Comment("verilator lint_on UNUSEDSIGNAL".into()));
        for j in 1..=plan.corrections {
            let d = format!("dq{j}");
            result = Expr::cond(
                Expr::bin(BinOp::Eq, Expr::Slice(d.clone(), wc, wc), Expr::lit(1, 0)),
                Expr::Slice(d, n - 1, 0),
                result,
            );
        }
    }
    g.ff.push(Stmt::NonBlocking(Expr::id("r"), result));
    control.push(Stmt::If(
        Expr::id("rst"),
        vec![Stmt::NonBlocking(Expr::id("out_valid"), Expr::lit(1, 0))],
        vec![Stmt::NonBlocking(Expr::id("out_valid"), Expr::id(v))],
    ));
    let mut items = std::mem::take(&mut g.items);
    items.push(Item::AlwaysFf {
        clock: "clk".into(),
        body: control,
    });
    items.push(Item::AlwaysFf {
        clock: "clk".into(),
        body: std::mem::take(&mut g.ff),
    });
    let module = Module {
        name: top.into(),
        comments: vec![
            format!(
                "{}-bit modular reducer ({}), generated by archsweep from sim::modred::Plan",
                n, plan.arch
            ),
            format!("modulus q = 0x{:x}", plan.q),
            format!(
                "input width {w}, latency {} cycles, initiation interval {} cycles",
                plan.latency, plan.ii
            ),
        ],
        ports: vec![
            Port::input("clk", 1),
            Port::input("rst", 1),
            Port::input("in_valid", 1),
            Port::input("x", w),
            Port::output_reg("out_valid", 1),
            Port::output_reg("r", n),
        ],
        items,
    };
    let mut files = vec![(format!("{top}.v"), rtl::emit::module(&module))];
    files.extend(g.files);
    Files { files }
}

/// A self-checking testbench `tb` for `design(plan, top, ..)`: drives `inputs` every `ii`
/// cycles, checks every residue against `expected` and its arrival exactly `latency - 1` edges
/// after capture, `$fatal`s on any mismatch, and prints `PASS` at the end.
pub fn testbench(plan: &Plan, top: &str, inputs: &[BigUint], expected: &[BigUint]) -> Files {
    let (n, w) = (plan.n, plan.w);
    let count = inputs.len() as i64;
    let lat = plan.latency as i64;
    let id = Expr::id;
    let int = Expr::Int;
    let wait_neg = || Stmt::WaitEdge {
        clock: "clk".into(),
        posedge: false,
    };
    let mut drive = vec![
        wait_neg(),
        Stmt::Blocking(id("in_valid"), Expr::lit(1, 1)),
        Stmt::Blocking(id("x"), Expr::index("xs", id("i"))),
        Stmt::Blocking(
            Expr::index("cap", id("i")),
            Expr::bin(BinOp::Add, id("edge_no"), int(1)),
        ),
    ];
    if plan.ii > 1 {
        drive.push(Stmt::For {
            var: "j".into(),
            from: int(1),
            to: int(plan.ii as i64),
            body: vec![wait_neg(), Stmt::Blocking(id("in_valid"), Expr::lit(1, 0))],
        });
    }
    let fatal = |msg: &str, args: Vec<Expr>| {
        let mut a = vec![int(1), Expr::Str(msg.into())];
        a.extend(args);
        Stmt::SysTask("fatal".into(), a)
    };
    let items = vec![
        Item::Reg {
            name: "clk".into(),
            width: 1,
        },
        Item::Reg {
            name: "rst".into(),
            width: 1,
        },
        Item::Reg {
            name: "in_valid".into(),
            width: 1,
        },
        Item::Reg {
            name: "x".into(),
            width: w,
        },
        Item::Wire {
            name: "out_valid".into(),
            width: 1,
            value: None,
        },
        Item::Wire {
            name: "r".into(),
            width: n,
            value: None,
        },
        Item::Memory {
            name: "xs".into(),
            width: w,
            depth: count as u64,
            init_file: Some("tb_x.hex".into()),
        },
        Item::Memory {
            name: "ys".into(),
            width: n,
            depth: count as u64,
            init_file: Some("tb_r.hex".into()),
        },
        Item::Integer("edge_no".into()),
        Item::Integer("got".into()),
        Item::Integer("i".into()),
        Item::Integer("j".into()),
        Item::Memory {
            name: "cap".into(),
            width: 32,
            depth: count as u64,
            init_file: None,
        },
        Item::Instance {
            module: top.into(),
            name: "dut".into(),
            connections: ["clk", "rst", "in_valid", "x", "out_valid", "r"]
                .iter()
                .map(|p| (p.to_string(), id(p)))
                .collect(),
        },
        Item::ClockGen {
            clock: "clk".into(),
            half_period: 5,
        },
        Item::AlwaysFf {
            clock: "clk".into(),
            body: vec![Stmt::NonBlocking(
                id("edge_no"),
                Expr::bin(BinOp::Add, id("edge_no"), int(1)),
            )],
        },
        Item::AlwaysNeg {
            clock: "clk".into(),
            body: vec![Stmt::If(
                Expr::bin(
                    BinOp::LogAnd,
                    Expr::bin(BinOp::Eq, id("rst"), Expr::lit(1, 0)),
                    id("out_valid"),
                ),
                vec![
                    Stmt::If(
                        Expr::bin(BinOp::Ge, id("got"), int(count)),
                        vec![fatal("unexpected output %0h", vec![id("r")])],
                        vec![],
                    ),
                    Stmt::If(
                        Expr::bin(BinOp::Ne, id("r"), Expr::index("ys", id("got"))),
                        vec![fatal(
                            "vector %0d: residue %0h, expected %0h",
                            vec![id("got"), id("r"), Expr::index("ys", id("got"))],
                        )],
                        vec![],
                    ),
                    Stmt::If(
                        Expr::bin(
                            BinOp::Ne,
                            id("edge_no"),
                            Expr::bin(BinOp::Add, Expr::index("cap", id("got")), int(lat - 1)),
                        ),
                        vec![fatal(
                            "vector %0d: output at edge %0d, expected at edge %0d (latency %0d)",
                            vec![
                                id("got"),
                                id("edge_no"),
                                Expr::bin(BinOp::Add, Expr::index("cap", id("got")), int(lat - 1)),
                                int(lat),
                            ],
                        )],
                        vec![],
                    ),
                    Stmt::Blocking(id("got"), Expr::bin(BinOp::Add, id("got"), int(1))),
                ],
                vec![],
            )],
        },
        Item::Initial(vec![
            Stmt::Blocking(id("clk"), Expr::lit(1, 0)),
            Stmt::Blocking(id("rst"), Expr::lit(1, 1)),
            Stmt::Blocking(id("in_valid"), Expr::lit(1, 0)),
            Stmt::Blocking(id("x"), Expr::lit(w, 0)),
            Stmt::Blocking(id("edge_no"), int(0)),
            Stmt::Blocking(id("got"), int(0)),
            Stmt::For {
                var: "i".into(),
                from: int(0),
                to: int(3),
                body: vec![wait_neg()],
            },
            Stmt::Blocking(id("rst"), Expr::lit(1, 0)),
            Stmt::For {
                var: "i".into(),
                from: int(0),
                to: int(count),
                body: drive,
            },
            wait_neg(),
            Stmt::Blocking(id("in_valid"), Expr::lit(1, 0)),
            Stmt::For {
                var: "i".into(),
                from: int(0),
                to: int(lat + 4),
                body: vec![wait_neg()],
            },
            Stmt::If(
                Expr::bin(BinOp::Ne, id("got"), int(count)),
                vec![fatal(
                    "%0d of %0d residues arrived",
                    vec![id("got"), int(count)],
                )],
                vec![],
            ),
            Stmt::SysTask(
                "display".into(),
                vec![Expr::Str("PASS %0d vectors".into()), int(count)],
            ),
            Stmt::SysTask("finish".into(), vec![]),
        ]),
    ];
    let tb = Module {
        name: "tb".into(),
        comments: vec![format!(
            "self-checking testbench for {top}: {count} vectors from the golden model"
        )],
        ports: vec![],
        items,
    };
    let xs: String = inputs.iter().map(|x| format!("{x:x}\n")).collect();
    let ys: String = expected.iter().map(|y| format!("{y:x}\n")).collect();
    Files {
        files: vec![
            ("tb.v".into(), rtl::emit::module(&tb)),
            ("tb_x.hex".into(), xs),
            ("tb_r.hex".into(), ys),
        ],
    }
}

/// Test vectors: the edge cases of [`sim::modred::edge_cases`] and `random` uniformly random
/// inputs from a ChaCha stream seeded with `seed`, with the golden residues (num-bigint's `%`).
pub fn vectors(plan: &Plan, random: usize, seed: u64) -> (Vec<BigUint>, Vec<BigUint>) {
    use rand::SeedableRng;
    let mut xs = sim::modred::edge_cases(&plan.q, plan.w);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    xs.extend((0..random).map(|_| sim::modred::random_bits(&mut rng, plan.w)));
    let ys = xs.iter().map(|x| x % &plan.q).collect();
    (xs, ys)
}
