//! Helpers shared by step types: reading expressions and column names, checking them
//! against the input schema with "did you mean".

use orch_expr::Expr;
use orch_spec::suggest;
use orch_spec::{Ctx, DataType, Diagnostic, Diagnostics, Node, Schema, Span};
use serde::Serialize;

/// A parsed expression with its source location. Serialises as canonical SQL so that
/// fingerprints ignore formatting.
#[derive(Debug, Clone)]
pub struct ExprSrc {
    pub expr: Expr,
    pub span: Span,
}

impl Serialize for ExprSrc {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.expr.to_sql())
    }
}

impl ExprSrc {
    /// Reads and parses an expression (after `${param}` substitution).
    pub fn decode(node: &Node, what: &str, ctx: &mut Ctx<'_>) -> Option<ExprSrc> {
        let text = ctx.string(node, what)?;
        match orch_expr::parse(&text) {
            Ok(expr) => Some(ExprSrc {
                expr,
                span: node.span,
            }),
            Err(e) => {
                ctx.error(
                    Diagnostic::error(format!("`{what}`: {}", e.message))
                        .at(node.span)
                        .label("in this expression")
                        .hint("expressions use SQL syntax; see docs/expressions.md")
                        .maybe_hint(e.hints.first().cloned()),
                );
                None
            }
        }
    }

    /// Type-checks against `schema`; every problem becomes a located diagnostic.
    pub fn check(&self, schema: &Schema, diags: &mut Diagnostics) -> Option<DataType> {
        match self.expr.check(schema) {
            Ok(t) => Some(t),
            Err(errors) => {
                for e in errors {
                    let mut d = Diagnostic::error(e.message.clone()).at(self.span);
                    for h in &e.hints {
                        d = d.hint(h.clone());
                    }
                    diags.push(d);
                }
                None
            }
        }
    }
}

/// A column name with where it was written.
#[derive(Debug, Clone)]
pub struct ColRef {
    pub name: String,
    pub span: Span,
}

impl Serialize for ColRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl ColRef {
    pub fn list(node: &Node, what: &str, ctx: &mut Ctx<'_>) -> Option<Vec<ColRef>> {
        let items = ctx.strings(node, what)?;
        Some(
            items
                .into_iter()
                .map(|(name, span)| ColRef { name, span })
                .collect(),
        )
    }

    /// The column's type, or a diagnostic naming the valid columns and the closest match.
    pub fn resolve<'s>(
        &self,
        schema: &'s Schema,
        side: &str,
        diags: &mut Diagnostics,
    ) -> Option<&'s DataType> {
        let t = schema.get(&self.name);
        if t.is_none() {
            diags.push(missing_column(&self.name, self.span, schema, side));
        }
        t
    }
}

/// "column `acount_id` not found in the input; valid columns are ..." + did you mean.
pub fn missing_column(name: &str, span: Span, schema: &Schema, side: &str) -> Diagnostic {
    Diagnostic::error(format!("column `{name}` not found in {side}"))
        .at(span)
        .maybe_hint(suggest::hint(name, schema.names()))
        .hint(schema.describe_columns())
}

/// Canonical JSON of a step's options for its fingerprint.
pub fn fingerprint_of<T: Serialize>(type_name: &str, options: &T) -> String {
    // Serialising plain option structs (strings, numbers, lists) cannot fail.
    let body = serde_json::to_string(options).unwrap_or_default();
    format!("{type_name}:{body}")
}
