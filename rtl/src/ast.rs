//! The Verilog syntax tree: modules, declarations, continuous assignments, always blocks,
//! statements and expressions (the subset synthesizable designs and self-checking testbenches
//! need).

/// A module.
#[derive(Debug, Clone, PartialEq)]
pub struct Module {
    /// Module name.
    pub name: String,
    /// Header comment lines.
    pub comments: Vec<String>,
    /// Ports in order.
    pub ports: Vec<Port>,
    /// Body items in order.
    pub items: Vec<Item>,
}

/// Port direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Input.
    Input,
    /// Output.
    Output,
}

/// A port.
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    /// Direction.
    pub dir: Dir,
    /// Name.
    pub name: String,
    /// Width in bits.
    pub width: u64,
    /// Whether an output is a `reg`.
    pub reg: bool,
}

impl Port {
    /// An input.
    pub fn input(name: &str, width: u64) -> Port {
        Port {
            dir: Dir::Input,
            name: name.into(),
            width,
            reg: false,
        }
    }

    /// An output driven by a register.
    pub fn output_reg(name: &str, width: u64) -> Port {
        Port {
            dir: Dir::Output,
            name: name.into(),
            width,
            reg: true,
        }
    }

    /// An output driven by a continuous assignment.
    pub fn output(name: &str, width: u64) -> Port {
        Port {
            dir: Dir::Output,
            name: name.into(),
            width,
            reg: false,
        }
    }
}

/// A module body item.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A comment line.
    Comment(String),
    /// `wire [width-1:0] name;` (with an optional driver: `wire ... = expr;`).
    Wire {
        /// Name.
        name: String,
        /// Width.
        width: u64,
        /// Driver.
        value: Option<Expr>,
    },
    /// `reg [width-1:0] name;`
    Reg {
        /// Name.
        name: String,
        /// Width.
        width: u64,
    },
    /// `integer name;`
    Integer(String),
    /// `reg [width-1:0] name [0:depth-1];`, optionally loaded by `$readmemh(file)`.
    Memory {
        /// Name.
        name: String,
        /// Word width.
        width: u64,
        /// Words.
        depth: u64,
        /// Hex file loaded at elaboration.
        init_file: Option<String>,
    },
    /// `assign lhs = rhs;`
    Assign {
        /// Target.
        lhs: String,
        /// Value.
        rhs: Expr,
    },
    /// `always @(posedge clock) begin ... end`
    AlwaysFf {
        /// Clock signal.
        clock: String,
        /// Statements.
        body: Vec<Stmt>,
    },
    /// `always @(*) begin ... end`
    AlwaysComb(Vec<Stmt>),
    /// `always @(negedge clock) begin ... end` (testbenches).
    AlwaysNeg {
        /// Clock signal.
        clock: String,
        /// Statements.
        body: Vec<Stmt>,
    },
    /// `always #half clock = ~clock;` (testbenches).
    ClockGen {
        /// Clock signal.
        clock: String,
        /// Half period in time units.
        half_period: u64,
    },
    /// `initial begin ... end` (testbenches).
    Initial(Vec<Stmt>),
    /// A module instance with named connections.
    Instance {
        /// Module name.
        module: String,
        /// Instance name.
        name: String,
        /// (port, signal) pairs.
        connections: Vec<(String, Expr)>,
    },
}

/// A statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// `lhs <= rhs;`
    NonBlocking(Expr, Expr),
    /// `lhs = rhs;`
    Blocking(Expr, Expr),
    /// `if (cond) ... else ...`
    If(Expr, Vec<Stmt>, Vec<Stmt>),
    /// `case (sel) value: ...; default: ...; endcase`
    Case {
        /// Selector.
        sel: Expr,
        /// Arms: (label, statements).
        arms: Vec<(Expr, Vec<Stmt>)>,
        /// Default arm.
        default: Vec<Stmt>,
    },
    /// `for (var = from; var < to; var = var + 1) ...`
    For {
        /// Loop variable (an `integer`).
        var: String,
        /// Start value.
        from: Expr,
        /// Bound (exclusive).
        to: Expr,
        /// Body.
        body: Vec<Stmt>,
    },
    /// `@(posedge clock);` or `@(negedge clock);`
    WaitEdge {
        /// Clock signal.
        clock: String,
        /// Positive edge?
        posedge: bool,
    },
    /// A system task call: `$name(args);`
    SysTask(String, Vec<Expr>),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `&`
    And,
    /// `|`
    Or,
    /// `^`
    Xor,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `>=`
    Ge,
    /// `&&`
    LogAnd,
    /// `||`
    LogOr,
    /// `<<`
    Shl,
}

impl BinOp {
    /// Verilog spelling.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::And => "&",
            BinOp::Or => "|",
            BinOp::Xor => "^",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Ge => ">=",
            BinOp::LogAnd => "&&",
            BinOp::LogOr => "||",
            BinOp::Shl => "<<",
        }
    }
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A signal.
    Ident(String),
    /// A sized constant in hexadecimal (`width'hdigits`).
    Hex {
        /// Width.
        width: u64,
        /// Hex digits (no prefix).
        digits: String,
    },
    /// An unsized decimal integer (loop bounds, indices in testbenches).
    Int(i64),
    /// A string literal (system-task arguments).
    Str(String),
    /// `name[msb:lsb]`
    Slice(String, u64, u64),
    /// `name[index]` (bit select or memory word).
    Index(String, Box<Expr>),
    /// `{a, b, ...}`
    Concat(Vec<Expr>),
    /// `{count{expr}}`
    Repeat(u64, Box<Expr>),
    /// `(a op b)`
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// `(c ? a : b)`
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `~a`
    Not(Box<Expr>),
    /// A system function: `$name(args)`.
    SysFn(String, Vec<Expr>),
}

impl Expr {
    /// A signal reference.
    pub fn id(name: impl Into<String>) -> Expr {
        Expr::Ident(name.into())
    }

    /// A `width`-bit constant from a `u64`.
    pub fn lit(width: u64, value: u64) -> Expr {
        Expr::Hex {
            width,
            digits: format!("{value:x}"),
        }
    }

    /// A binary operation.
    pub fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
        Expr::Bin(op, Box::new(a), Box::new(b))
    }

    /// `c ? a : b`.
    pub fn cond(c: Expr, a: Expr, b: Expr) -> Expr {
        Expr::Cond(Box::new(c), Box::new(a), Box::new(b))
    }

    /// The sum of `terms` (left-associated); a single term is itself.
    pub fn sum(terms: Vec<Expr>) -> Expr {
        let mut it = terms.into_iter();
        let first = it.next().expect("sum of no terms");
        it.fold(first, |acc, t| Expr::bin(BinOp::Add, acc, t))
    }

    /// `name[index]`.
    pub fn index(name: &str, index: Expr) -> Expr {
        Expr::Index(name.into(), Box::new(index))
    }
}
