//! Verilog-2001 text from the syntax tree.

use std::fmt::Write;

use crate::ast::{Dir, Expr, Item, Module, Stmt};

fn range(width: u64) -> String {
    if width <= 1 {
        String::new()
    } else {
        format!("[{}:0] ", width - 1)
    }
}

/// Verilog text of an expression.
pub fn expr(e: &Expr) -> String {
    match e {
        Expr::Ident(n) => n.clone(),
        Expr::Hex { width, digits } => format!("{width}'h{digits}"),
        Expr::Int(i) => i.to_string(),
        Expr::Str(s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        Expr::Slice(n, msb, lsb) => {
            if msb == lsb {
                format!("{n}[{msb}]")
            } else {
                format!("{n}[{msb}:{lsb}]")
            }
        }
        Expr::Index(n, i) => format!("{n}[{}]", expr(i)),
        Expr::Concat(parts) => {
            let p: Vec<String> = parts.iter().map(expr).collect();
            format!("{{{}}}", p.join(", "))
        }
        Expr::Repeat(n, e) => format!("{{{n}{{{}}}}}", expr(e)),
        Expr::Bin(op, a, b) => format!("({} {} {})", expr(a), op.symbol(), expr(b)),
        Expr::Cond(c, a, b) => format!("({} ? {} : {})", expr(c), expr(a), expr(b)),
        Expr::Not(a) => format!("~{}", expr(a)),
        Expr::SysFn(n, args) => {
            let a: Vec<String> = args.iter().map(expr).collect();
            format!("${n}({})", a.join(", "))
        }
    }
}

fn stmts(out: &mut String, body: &[Stmt], indent: usize) {
    for s in body {
        stmt(out, s, indent);
    }
}

fn stmt(out: &mut String, s: &Stmt, indent: usize) {
    let pad = "  ".repeat(indent);
    match s {
        Stmt::NonBlocking(l, r) => {
            let _ = writeln!(out, "{pad}{} <= {};", expr(l), expr(r));
        }
        Stmt::Blocking(l, r) => {
            let _ = writeln!(out, "{pad}{} = {};", expr(l), expr(r));
        }
        Stmt::If(c, then, els) => {
            let _ = writeln!(out, "{pad}if ({}) begin", expr(c));
            stmts(out, then, indent + 1);
            if els.is_empty() {
                let _ = writeln!(out, "{pad}end");
            } else {
                let _ = writeln!(out, "{pad}end else begin");
                stmts(out, els, indent + 1);
                let _ = writeln!(out, "{pad}end");
            }
        }
        Stmt::Case { sel, arms, default } => {
            let _ = writeln!(out, "{pad}case ({})", expr(sel));
            for (label, body) in arms {
                if let [single] = body.as_slice() {
                    let mut line = String::new();
                    stmt(&mut line, single, 0);
                    let _ = write!(out, "{pad}  {}: {}", expr(label), line);
                } else {
                    let _ = writeln!(out, "{pad}  {}: begin", expr(label));
                    stmts(out, body, indent + 2);
                    let _ = writeln!(out, "{pad}  end");
                }
            }
            let _ = writeln!(out, "{pad}  default: begin");
            stmts(out, default, indent + 2);
            let _ = writeln!(out, "{pad}  end");
            let _ = writeln!(out, "{pad}endcase");
        }
        Stmt::For {
            var,
            from,
            to,
            body,
        } => {
            let _ = writeln!(
                out,
                "{pad}for ({var} = {}; {var} < {}; {var} = {var} + 1) begin",
                expr(from),
                expr(to)
            );
            stmts(out, body, indent + 1);
            let _ = writeln!(out, "{pad}end");
        }
        Stmt::WaitEdge { clock, posedge } => {
            let edge = if *posedge { "posedge" } else { "negedge" };
            let _ = writeln!(out, "{pad}@({edge} {clock});");
        }
        Stmt::SysTask(name, args) => {
            let a: Vec<String> = args.iter().map(expr).collect();
            if a.is_empty() {
                let _ = writeln!(out, "{pad}${name};");
            } else {
                let _ = writeln!(out, "{pad}${name}({});", a.join(", "));
            }
        }
    }
}

/// Verilog text of a module.
pub fn module(m: &Module) -> String {
    let mut o = String::new();
    for c in &m.comments {
        let _ = writeln!(o, "// {c}");
    }
    if m.ports.is_empty() {
        let _ = writeln!(o, "module {};", m.name);
    } else {
        let _ = writeln!(o, "module {} (", m.name);
        for (i, p) in m.ports.iter().enumerate() {
            let dir = match p.dir {
                Dir::Input => "input  wire",
                Dir::Output if p.reg => "output reg ",
                Dir::Output => "output wire",
            };
            let sep = if i + 1 == m.ports.len() { "" } else { "," };
            let _ = writeln!(o, "  {dir} {}{}{sep}", range(p.width), p.name);
        }
        let _ = writeln!(o, ");");
    }
    for item in &m.items {
        match item {
            Item::Comment(c) => {
                let _ = writeln!(o, "  // {c}");
            }
            Item::Wire { name, width, value } => match value {
                Some(v) => {
                    let _ = writeln!(o, "  wire {}{name} = {};", range(*width), expr(v));
                }
                None => {
                    let _ = writeln!(o, "  wire {}{name};", range(*width));
                }
            },
            Item::Reg { name, width } => {
                let _ = writeln!(o, "  reg {}{name};", range(*width));
            }
            Item::Integer(name) => {
                let _ = writeln!(o, "  integer {name};");
            }
            Item::Memory {
                name,
                width,
                depth,
                init_file,
            } => {
                let _ = writeln!(o, "  reg {}{name} [0:{}];", range(*width), depth - 1);
                if let Some(f) = init_file {
                    let _ = writeln!(o, "  initial $readmemh(\"{f}\", {name});");
                }
            }
            Item::Assign { lhs, rhs } => {
                let _ = writeln!(o, "  assign {lhs} = {};", expr(rhs));
            }
            Item::AlwaysFf { clock, body } => {
                let _ = writeln!(o, "  always @(posedge {clock}) begin");
                stmts(&mut o, body, 2);
                let _ = writeln!(o, "  end");
            }
            Item::AlwaysNeg { clock, body } => {
                let _ = writeln!(o, "  always @(negedge {clock}) begin");
                stmts(&mut o, body, 2);
                let _ = writeln!(o, "  end");
            }
            Item::AlwaysComb(body) => {
                let _ = writeln!(o, "  always @(*) begin");
                stmts(&mut o, body, 2);
                let _ = writeln!(o, "  end");
            }
            Item::ClockGen { clock, half_period } => {
                let _ = writeln!(o, "  always #{half_period} {clock} = ~{clock};");
            }
            Item::Initial(body) => {
                let _ = writeln!(o, "  initial begin");
                stmts(&mut o, body, 2);
                let _ = writeln!(o, "  end");
            }
            Item::Instance {
                module,
                name,
                connections,
            } => {
                let _ = writeln!(o, "  {module} {name} (");
                for (i, (port, sig)) in connections.iter().enumerate() {
                    let sep = if i + 1 == connections.len() { "" } else { "," };
                    let _ = writeln!(o, "    .{port}({}){sep}", expr(sig));
                }
                let _ = writeln!(o, "  );");
            }
        }
    }
    let _ = writeln!(o, "endmodule");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::{BinOp, Port};

    #[test]
    fn emits_a_registered_adder() {
        let m = Module {
            name: "add2".into(),
            comments: vec!["two-input registered adder".into()],
            ports: vec![
                Port::input("clk", 1),
                Port::input("a", 8),
                Port::input("b", 8),
                Port::output_reg("s", 9),
            ],
            items: vec![Item::AlwaysFf {
                clock: "clk".into(),
                body: vec![Stmt::NonBlocking(
                    Expr::id("s"),
                    Expr::bin(BinOp::Add, Expr::id("a"), Expr::id("b")),
                )],
            }],
        };
        assert_eq!(
            module(&m),
            "// two-input registered adder\nmodule add2 (\n  input  wire clk,\n  input  wire [7:0] a,\n  input  wire [7:0] b,\n  output reg  [8:0] s\n);\n  always @(posedge clk) begin\n    s <= (a + b);\n  end\nendmodule\n"
        );
    }

    #[test]
    fn emits_case_and_constants() {
        let s = Stmt::Case {
            sel: Expr::Slice("x".into(), 1, 0),
            arms: vec![(
                Expr::lit(2, 1),
                vec![Stmt::Blocking(Expr::id("y"), Expr::lit(12, 0xabc))],
            )],
            default: vec![Stmt::Blocking(Expr::id("y"), Expr::lit(12, 0))],
        };
        let mut o = String::new();
        stmt(&mut o, &s, 0);
        assert_eq!(
            o,
            "case (x[1:0])\n  2'h1: y = 12'habc;\n  default: begin\n    y = 12'h0;\n  end\nendcase\n"
        );
        assert_eq!(expr(&Expr::Str("a\"b".into())), "\"a\\\"b\"");
    }
}
