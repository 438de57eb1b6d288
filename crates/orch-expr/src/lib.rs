//! Expressions of `derive` and `filter` steps: a small SQL dialect.
//!
//! Text is parsed with sqlparser ([`parse`]) into our own typed model ([`Expr`]), which is
//! type-checked against a step's input ([`Expr::check`]), lowered to native polars
//! expressions ([`Expr::to_polars`]) and rendered back as canonical SQL ([`Expr::to_sql`],
//! used for fingerprints and, later, for Spark). The language is documented in
//! docs/expressions.md; [`functions()`] lists the function library.

mod ast;
mod check;
pub mod datefmt;
mod error;
mod functions;
mod lower_polars;
mod parse;
mod sql;

pub use ast::{BinaryOp, Expr, Literal, UnaryOp};
pub use error::ExprError;
pub use functions::{functions, Func, FunctionDoc};
pub use lower_polars::{from_polars_dtype, to_polars_dtype};
pub use parse::{parse, MAX_DEPTH};
pub use sql::{quote_ident, quote_string};

#[cfg(test)]
mod tests;
