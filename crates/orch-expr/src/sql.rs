//! Canonical SQL text: every compound node parenthesised, keywords upper case, functions
//! lower case, `<>` for inequality. `parse(e.to_sql()) == e` for every parsed `e`, so the
//! text is a stable fingerprint that ignores the author's formatting.

use std::fmt::Write;

use crate::ast::{Expr, Literal, UnaryOp};

impl Expr {
    /// Renders canonical, fully parenthesised SQL.
    pub fn to_sql(&self) -> String {
        let mut out = String::new();
        write_expr(&mut out, self);
        out
    }
}

fn write_expr(out: &mut String, e: &Expr) {
    match e {
        Expr::Column(name) => out.push_str(&quote_ident(name)),
        Expr::Literal(l) => write_literal(out, l),
        Expr::Unary { op, expr } => {
            match (op, &**expr) {
                // `-(5)` stays a negation: a bare `-5` would re-parse as the literal -5.
                (UnaryOp::Neg, Expr::Literal(Literal::Int(_) | Literal::Float(_))) => {
                    out.push_str("(-(");
                    write_expr(out, expr);
                    out.push_str("))");
                }
                (UnaryOp::Neg, _) => {
                    // A space after `-` so that `- -x` never reads as a `--` comment.
                    out.push_str("(- ");
                    write_expr(out, expr);
                    out.push(')');
                }
                (UnaryOp::Not, _) => {
                    out.push_str("(NOT ");
                    write_expr(out, expr);
                    out.push(')');
                }
            }
        }
        Expr::Binary { op, left, right } => {
            out.push('(');
            write_expr(out, left);
            let _ = write!(out, " {} ", op.symbol());
            write_expr(out, right);
            out.push(')');
        }
        Expr::Case {
            operand,
            branches,
            otherwise,
        } => {
            out.push_str("CASE");
            if let Some(o) = operand {
                out.push(' ');
                write_expr(out, o);
            }
            for (w, t) in branches {
                out.push_str(" WHEN ");
                write_expr(out, w);
                out.push_str(" THEN ");
                write_expr(out, t);
            }
            if let Some(e) = otherwise {
                out.push_str(" ELSE ");
                write_expr(out, e);
            }
            out.push_str(" END");
        }
        Expr::Function { name, args } => {
            out.push_str(name.name());
            out.push('(');
            write_list(out, args);
            out.push(')');
        }
        Expr::Cast { expr, to, try_cast } => {
            out.push_str(if *try_cast { "TRY_CAST(" } else { "CAST(" });
            write_expr(out, expr);
            let _ = write!(out, " AS {to})");
        }
        Expr::IsNull { expr, negated } => {
            out.push('(');
            write_expr(out, expr);
            out.push_str(if *negated {
                " IS NOT NULL)"
            } else {
                " IS NULL)"
            });
        }
        Expr::InList {
            expr,
            list,
            negated,
        } => {
            out.push('(');
            write_expr(out, expr);
            out.push_str(if *negated { " NOT IN (" } else { " IN (" });
            write_list(out, list);
            out.push_str("))");
        }
        Expr::Between {
            expr,
            low,
            high,
            negated,
        } => {
            out.push('(');
            write_expr(out, expr);
            out.push_str(if *negated {
                " NOT BETWEEN "
            } else {
                " BETWEEN "
            });
            write_expr(out, low);
            out.push_str(" AND ");
            write_expr(out, high);
            out.push(')');
        }
        Expr::Like {
            expr,
            pattern,
            negated,
            case_insensitive,
        } => {
            out.push('(');
            write_expr(out, expr);
            out.push_str(if *negated { " NOT" } else { "" });
            out.push_str(if *case_insensitive {
                " ILIKE "
            } else {
                " LIKE "
            });
            write_expr(out, pattern);
            out.push(')');
        }
    }
}

fn write_list(out: &mut String, items: &[Expr]) {
    for (i, a) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_expr(out, a);
    }
}

fn write_literal(out: &mut String, l: &Literal) {
    match l {
        Literal::Null => out.push_str("NULL"),
        Literal::Bool(true) => out.push_str("TRUE"),
        Literal::Bool(false) => out.push_str("FALSE"),
        Literal::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Literal::Float(f) if f.is_finite() => {
            // Debug prints the shortest text that reads back as the same f64 and always
            // includes `.` or an exponent, so it re-parses as a float, not an integer.
            let _ = write!(out, "{f:?}");
        }
        Literal::Float(f) => {
            let text = if f.is_nan() {
                "NaN"
            } else if *f > 0.0 {
                "inf"
            } else {
                "-inf"
            };
            let _ = write!(out, "CAST('{text}' AS float64)");
        }
        Literal::String(s) => out.push_str(&quote_string(s)),
        Literal::Date(d) => {
            let _ = write!(out, "DATE '{}'", d.format("%Y-%m-%d"));
        }
        Literal::Timestamp(t) => {
            let _ = write!(out, "TIMESTAMP '{}'", t.format("%Y-%m-%d %H:%M:%S%.f"));
        }
    }
}

/// `'it''s'`: SQL strings double their quotes; backslashes are not escapes.
pub fn quote_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A column name as SQL: bare when it is a plain identifier that is not a keyword,
/// otherwise double-quoted with inner quotes doubled.
pub fn quote_ident(name: &str) -> String {
    let mut chars = name.chars();
    let plain = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !sqlparser::keywords::ALL_KEYWORDS
            .iter()
            .any(|k| k.eq_ignore_ascii_case(name));
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}
