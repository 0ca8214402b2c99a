//! Constraint expressions such as `latency_cycles <= 200 and area_luts < 5e4`.
//!
//! Grammar: comparisons (`<=`, `<`, `>=`, `>`) of arithmetic expressions over metric and numeric
//! parameter names, numbers, `+ - * / ^`, parentheses and the functions `min max abs sqrt log
//! log2 log10 exp`, combined with `and` / `&&` and `or` / `||`.
//!
//! A constraint evaluates to a violation >= 0: for `a <= b` it is `max(0, a - b) / max(1, |b|)`
//! (relative, so constraints of different scales add up fairly); `and` adds violations, `or`
//! takes the smallest. Zero means satisfied.

use std::fmt;

/// A parse error with the character offset where it was found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} (at character {offset})")]
pub struct ExprError {
    /// 0-based character offset into the expression text.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// An arithmetic expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Num {
    /// A literal.
    Lit(f64),
    /// A name, before binding.
    Name(String, usize),
    /// A bound variable: slot index into the evaluation environment.
    Var(usize),
    /// Negation.
    Neg(Box<Num>),
    /// Binary operation: one of `+ - * / ^`.
    Bin(char, Box<Num>, Box<Num>),
    /// Function call.
    Call(String, Vec<Num>),
}

/// A constraint (boolean expression).
#[derive(Debug, Clone, PartialEq)]
pub enum Constraint {
    /// `lhs op rhs`.
    Compare(Num, Cmp, Num),
    /// Both hold.
    And(Box<Constraint>, Box<Constraint>),
    /// Either holds.
    Or(Box<Constraint>, Box<Constraint>),
}

const FUNCS: &[(&str, usize)] = &[
    ("min", 2),
    ("max", 2),
    ("abs", 1),
    ("sqrt", 1),
    ("log", 1),
    ("log2", 1),
    ("log10", 1),
    ("exp", 1),
];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Ident(String),
    Op(String),
    LParen,
    RParen,
    Comma,
}

fn lex(s: &str) -> Result<Vec<(Tok, usize)>, ExprError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            while i < chars.len()
                && (chars[i].is_ascii_digit() || chars[i] == '.' || chars[i] == '_')
            {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text: String = chars[start..i].iter().filter(|&&c| c != '_').collect();
            let v = text.parse::<f64>().map_err(|_| ExprError {
                offset: start,
                message: format!("bad number '{text}'"),
            })?;
            out.push((Tok::Num(v), start));
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            out.push((Tok::Ident(chars[start..i].iter().collect()), start));
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let tok = match two.as_str() {
            "<=" | ">=" | "&&" | "||" | "==" | "!=" => {
                i += 2;
                Tok::Op(two)
            }
            _ => {
                i += 1;
                match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    ',' => Tok::Comma,
                    '<' | '>' | '+' | '-' | '*' | '/' | '^' => Tok::Op(c.to_string()),
                    _ => {
                        return Err(ExprError {
                            offset: start,
                            message: format!("unexpected character '{c}'"),
                        })
                    }
                }
            }
        };
        out.push((tok, start));
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }
    fn offset(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(_, o)| *o)
    }
    fn err<T>(&self, message: impl Into<String>) -> Result<T, ExprError> {
        Err(ExprError {
            offset: self.offset(),
            message: message.into(),
        })
    }
    fn eat_op(&mut self, ops: &[&str]) -> Option<String> {
        match self.peek() {
            Some(Tok::Op(o)) if ops.contains(&o.as_str()) => {
                let o = o.clone();
                self.pos += 1;
                Some(o)
            }
            Some(Tok::Ident(w)) if ops.contains(&w.as_str()) => {
                let w = w.clone();
                self.pos += 1;
                Some(w)
            }
            _ => None,
        }
    }

    fn or(&mut self) -> Result<Constraint, ExprError> {
        let mut c = self.and()?;
        while self.eat_op(&["or", "||"]).is_some() {
            c = Constraint::Or(Box::new(c), Box::new(self.and()?));
        }
        Ok(c)
    }
    fn and(&mut self) -> Result<Constraint, ExprError> {
        let mut c = self.cmp()?;
        while self.eat_op(&["and", "&&"]).is_some() {
            c = Constraint::And(Box::new(c), Box::new(self.cmp()?));
        }
        Ok(c)
    }
    fn cmp(&mut self) -> Result<Constraint, ExprError> {
        // A parenthesised constraint, e.g. `(a < 1 or b < 2) and c < 3`.
        if self.peek() == Some(&Tok::LParen) {
            let save = self.pos;
            self.pos += 1;
            if let Ok(c) = self.or() {
                if self.peek() == Some(&Tok::RParen) {
                    self.pos += 1;
                    return Ok(c);
                }
                // A whole constraint followed by something else: the ')' is missing, unless
                // the parenthesis opened an arithmetic term (`(a + b) * 2 < c`).
                if !matches!(self.peek(), Some(Tok::Op(_))) {
                    return self.err("expected ')'");
                }
            }
            self.pos = save;
        }
        let lhs = self.sum()?;
        let op = match self.eat_op(&["<=", "<", ">=", ">", "==", "!="]) {
            Some(o) => o,
            None => return self.err(
                "expected a comparison (<=, <, >=, >): a constraint must compare two quantities",
            ),
        };
        let cmp = match op.as_str() {
            "<=" => Cmp::Le,
            "<" => Cmp::Lt,
            ">=" => Cmp::Ge,
            ">" => Cmp::Gt,
            _ => {
                self.pos -= 1;
                return self.err(format!("'{op}' is not supported; use <=, <, >= or >"));
            }
        };
        let rhs = self.sum()?;
        Ok(Constraint::Compare(lhs, cmp, rhs))
    }
    fn sum(&mut self) -> Result<Num, ExprError> {
        let mut a = self.prod()?;
        while let Some(o) = self.eat_op(&["+", "-"]) {
            a = Num::Bin(
                o.chars().next().unwrap_or('+'),
                Box::new(a),
                Box::new(self.prod()?),
            );
        }
        Ok(a)
    }
    fn prod(&mut self) -> Result<Num, ExprError> {
        let mut a = self.unary()?;
        while let Some(o) = self.eat_op(&["*", "/"]) {
            a = Num::Bin(
                o.chars().next().unwrap_or('*'),
                Box::new(a),
                Box::new(self.unary()?),
            );
        }
        Ok(a)
    }
    fn unary(&mut self) -> Result<Num, ExprError> {
        if self.eat_op(&["-"]).is_some() {
            return Ok(Num::Neg(Box::new(self.unary()?)));
        }
        let base = self.atom()?;
        if self.eat_op(&["^"]).is_some() {
            return Ok(Num::Bin('^', Box::new(base), Box::new(self.unary()?)));
        }
        Ok(base)
    }
    fn atom(&mut self) -> Result<Num, ExprError> {
        let off = self.offset();
        match self.peek().cloned() {
            Some(Tok::Num(v)) => {
                self.pos += 1;
                Ok(Num::Lit(v))
            }
            Some(Tok::Ident(name)) => {
                self.pos += 1;
                if self.peek() != Some(&Tok::LParen) {
                    if ["and", "or"].contains(&name.as_str()) {
                        self.pos -= 1;
                        return self.err(format!("expected a quantity before '{name}'"));
                    }
                    return Ok(Num::Name(name, off));
                }
                let Some(&(_, arity)) = FUNCS.iter().find(|(f, _)| *f == name) else {
                    self.pos -= 1;
                    let names: Vec<&str> = FUNCS.iter().map(|(f, _)| *f).collect();
                    return self.err(format!(
                        "unknown function '{name}'; functions: {}",
                        names.join(", ")
                    ));
                };
                self.pos += 1;
                let mut args = vec![self.sum()?];
                while self.peek() == Some(&Tok::Comma) {
                    self.pos += 1;
                    args.push(self.sum()?);
                }
                if self.peek() != Some(&Tok::RParen) {
                    return self.err("expected ')'");
                }
                self.pos += 1;
                if args.len() != arity {
                    return Err(ExprError {
                        offset: off,
                        message: format!("{name} takes {arity} argument(s), got {}", args.len()),
                    });
                }
                Ok(Num::Call(name, args))
            }
            Some(Tok::LParen) => {
                self.pos += 1;
                let e = self.sum()?;
                if self.peek() != Some(&Tok::RParen) {
                    return self.err("expected ')'");
                }
                self.pos += 1;
                Ok(e)
            }
            Some(t) => self.err(format!("unexpected {}", describe(&t))),
            None => self.err("unexpected end of expression"),
        }
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(v) => format!("number {v}"),
        Tok::Ident(s) => format!("'{s}'"),
        Tok::Op(o) => format!("'{o}'"),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::Comma => "','".into(),
    }
}

impl Constraint {
    /// Parses a constraint; names stay unbound until [`Constraint::bind`].
    pub fn parse(text: &str) -> Result<Constraint, ExprError> {
        let toks = lex(text)?;
        let mut p = Parser {
            toks,
            pos: 0,
            end: text.chars().count(),
        };
        let c = p.or()?;
        if p.pos < p.toks.len() {
            let t = p.toks[p.pos].0.clone();
            return p.err(format!("unexpected {} after the constraint", describe(&t)));
        }
        Ok(c)
    }

    /// Replaces every name by the slot `resolve` gives it; an unknown name is an error naming
    /// the name's offset.
    pub fn bind(&mut self, resolve: &dyn Fn(&str) -> Option<usize>) -> Result<(), (String, usize)> {
        match self {
            Constraint::Compare(a, _, b) => {
                a.bind(resolve)?;
                b.bind(resolve)
            }
            Constraint::And(a, b) | Constraint::Or(a, b) => {
                a.bind(resolve)?;
                b.bind(resolve)
            }
        }
    }

    /// The violation (0 = satisfied) with slot values `env`. NaN operands count as violated.
    pub fn violation(&self, env: &[f64]) -> f64 {
        match self {
            Constraint::Compare(a, op, b) => {
                let (a, b) = (a.eval(env), b.eval(env));
                let (lo, hi, strict) = match op {
                    Cmp::Le => (a, b, false),
                    Cmp::Lt => (a, b, true),
                    Cmp::Ge => (b, a, false),
                    Cmp::Gt => (b, a, true),
                };
                // Constraint `lo <= hi` (or `<`).
                let ok = if strict { lo < hi } else { lo <= hi };
                if ok {
                    0.0
                } else if lo.is_nan() || hi.is_nan() {
                    f64::INFINITY
                } else {
                    ((lo - hi) / b.abs().max(1.0)).max(f64::MIN_POSITIVE)
                }
            }
            Constraint::And(a, b) => a.violation(env) + b.violation(env),
            Constraint::Or(a, b) => a.violation(env).min(b.violation(env)),
        }
    }

    /// Whether some assignment within the slot intervals `bounds` could satisfy the constraint
    /// (interval arithmetic: `false` proves it impossible, `true` proves nothing).
    pub fn satisfiable(&self, bounds: &[(f64, f64)]) -> bool {
        match self {
            Constraint::Compare(a, op, b) => {
                let (a, b) = (a.interval(bounds), b.interval(bounds));
                match op {
                    Cmp::Le => a.0 <= b.1,
                    Cmp::Lt => a.0 < b.1,
                    Cmp::Ge => a.1 >= b.0,
                    Cmp::Gt => a.1 > b.0,
                }
            }
            Constraint::And(a, b) => a.satisfiable(bounds) && b.satisfiable(bounds),
            Constraint::Or(a, b) => a.satisfiable(bounds) || b.satisfiable(bounds),
        }
    }

    /// Names in the constraint (before binding).
    pub fn names(&self) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        fn walk_c(c: &Constraint, out: &mut Vec<(String, usize)>) {
            match c {
                Constraint::Compare(a, _, b) => {
                    a.names(out);
                    b.names(out);
                }
                Constraint::And(a, b) | Constraint::Or(a, b) => {
                    walk_c(a, out);
                    walk_c(b, out);
                }
            }
        }
        walk_c(self, &mut out);
        out
    }
}

impl Num {
    fn bind(&mut self, resolve: &dyn Fn(&str) -> Option<usize>) -> Result<(), (String, usize)> {
        match self {
            Num::Name(n, off) => {
                *self = Num::Var(resolve(n).ok_or_else(|| (n.clone(), *off))?);
                Ok(())
            }
            Num::Lit(_) | Num::Var(_) => Ok(()),
            Num::Neg(a) => a.bind(resolve),
            Num::Bin(_, a, b) => {
                a.bind(resolve)?;
                b.bind(resolve)
            }
            Num::Call(_, args) => args.iter_mut().try_for_each(|a| a.bind(resolve)),
        }
    }

    fn names(&self, out: &mut Vec<(String, usize)>) {
        match self {
            Num::Name(n, off) => out.push((n.clone(), *off)),
            Num::Lit(_) | Num::Var(_) => {}
            Num::Neg(a) => a.names(out),
            Num::Bin(_, a, b) => {
                a.names(out);
                b.names(out);
            }
            Num::Call(_, args) => args.iter().for_each(|a| a.names(out)),
        }
    }

    /// The value with slot values `env` (unbound names are NaN).
    pub fn eval(&self, env: &[f64]) -> f64 {
        match self {
            Num::Lit(v) => *v,
            Num::Name(..) => f64::NAN,
            Num::Var(i) => env[*i],
            Num::Neg(a) => -a.eval(env),
            Num::Bin(op, a, b) => {
                let (a, b) = (a.eval(env), b.eval(env));
                match op {
                    '+' => a + b,
                    '-' => a - b,
                    '*' => a * b,
                    '/' => a / b,
                    _ => a.powf(b),
                }
            }
            Num::Call(f, args) => {
                let x = args[0].eval(env);
                match f.as_str() {
                    "min" => x.min(args[1].eval(env)),
                    "max" => x.max(args[1].eval(env)),
                    "abs" => x.abs(),
                    "sqrt" => x.sqrt(),
                    "log" => x.ln(),
                    "log2" => x.log2(),
                    "log10" => x.log10(),
                    _ => x.exp(),
                }
            }
        }
    }

    fn interval(&self, b: &[(f64, f64)]) -> (f64, f64) {
        const ALL: (f64, f64) = (f64::NEG_INFINITY, f64::INFINITY);
        let r = match self {
            Num::Lit(v) => (*v, *v),
            Num::Name(..) => ALL,
            Num::Var(i) => b[*i],
            Num::Neg(a) => {
                let (lo, hi) = a.interval(b);
                (-hi, -lo)
            }
            Num::Bin(op, x, y) => {
                let (x, y) = (x.interval(b), y.interval(b));
                match op {
                    '+' => (x.0 + y.0, x.1 + y.1),
                    '-' => (x.0 - y.1, x.1 - y.0),
                    '*' => hull(&[x.0 * y.0, x.0 * y.1, x.1 * y.0, x.1 * y.1]),
                    '/' if y.0 > 0.0 || y.1 < 0.0 => {
                        hull(&[x.0 / y.0, x.0 / y.1, x.1 / y.0, x.1 / y.1])
                    }
                    _ => ALL,
                }
            }
            Num::Call(f, args) => {
                let x = args[0].interval(b);
                match f.as_str() {
                    "min" => {
                        let y = args[1].interval(b);
                        (x.0.min(y.0), x.1.min(y.1))
                    }
                    "max" => {
                        let y = args[1].interval(b);
                        (x.0.max(y.0), x.1.max(y.1))
                    }
                    "abs" if x.0 >= 0.0 => x,
                    "abs" => (0.0, x.0.abs().max(x.1.abs())),
                    "sqrt" => (x.0.max(0.0).sqrt(), x.1.sqrt()),
                    "log" => (x.0.max(0.0).ln(), x.1.ln()),
                    "log2" => (x.0.max(0.0).log2(), x.1.log2()),
                    "log10" => (x.0.max(0.0).log10(), x.1.log10()),
                    _ => (x.0.exp(), x.1.exp()),
                }
            }
        };
        // Any NaN (e.g. inf - inf) means "unknown".
        if r.0.is_nan() || r.1.is_nan() {
            ALL
        } else {
            r
        }
    }
}

fn hull(v: &[f64]) -> (f64, f64) {
    if v.iter().any(|x| x.is_nan()) {
        return (f64::NEG_INFINITY, f64::INFINITY);
    }
    (
        v.iter().copied().fold(f64::INFINITY, f64::min),
        v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    )
}

impl fmt::Display for Cmp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        })
    }
}
