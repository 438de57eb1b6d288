//! Strict, error-collecting readers over YAML nodes.
//!
//! Every reader pushes a located diagnostic instead of returning early, so one pass over a
//! pipeline reports every problem. [`Fields`] remembers which keys were read so that unknown
//! keys are reported (with "did you mean") rather than silently ignored.

use crate::diag::{Diagnostic, Diagnostics, Span};
use crate::params::Params;
use crate::suggest;
use crate::yaml::{Node, Value};

/// The keys of one YAML mapping, read one by one.
pub struct Fields<'a> {
    node: &'a Node,
    entries: &'a [(Node, Node)],
    used: Vec<bool>,
    known: Vec<&'static str>,
    what: String,
}

impl<'a> Fields<'a> {
    /// `what` names the mapping in messages ("step `x`", "the pipeline").
    pub fn new(node: &'a Node, what: impl Into<String>, ctx: &mut Ctx<'_>) -> Option<Self> {
        let what = what.into();
        match &node.value {
            Value::Map(entries) => Some(Fields {
                node,
                entries,
                used: vec![false; entries.len()],
                known: Vec::new(),
                what,
            }),
            _ => {
                ctx.error(
                    Diagnostic::error(format!("{what} must be a mapping, got {}", node.kind()))
                        .at(node.span)
                        .hint("write `key: value` pairs"),
                );
                None
            }
        }
    }

    pub fn what(&self) -> &str {
        &self.what
    }

    pub fn span(&self) -> Span {
        self.node.span
    }

    pub fn node(&self) -> &'a Node {
        self.node
    }

    /// The value of `key`, if present. Marks the key as known either way.
    pub fn take(&mut self, key: &'static str) -> Option<&'a Node> {
        if !self.known.contains(&key) {
            self.known.push(key);
        }
        let entries = self.entries;
        let i = entries
            .iter()
            .position(|(k, _)| k.as_scalar() == Some(key))?;
        self.used[i] = true;
        Some(&entries[i].1)
    }

    /// The value of a required key; reports it missing otherwise.
    pub fn require(&mut self, key: &'static str, ctx: &mut Ctx<'_>) -> Option<&'a Node> {
        let v = self.take(key);
        if v.is_none() {
            ctx.error(
                Diagnostic::error(format!("{} is missing the required key `{key}`", self.what))
                    .at(self.key_span())
                    .hint(format!("add `{key}: ...`")),
            );
        }
        v
    }

    /// The location of the mapping's first key (a mapping's own span can be huge).
    fn key_span(&self) -> Span {
        self.entries.first().map_or(self.node.span, |(k, _)| k.span)
    }

    /// Keys present in the mapping that nobody asked for, in source order.
    pub fn unused(&self) -> impl Iterator<Item = &'a Node> + '_ {
        self.entries
            .iter()
            .zip(&self.used)
            .filter(|(_, u)| !**u)
            .map(|((k, _), _)| k)
    }

    /// Reports every key that was never read: unknown keys are errors, never ignored.
    pub fn finish(self, ctx: &mut Ctx<'_>) {
        for k in self.unused() {
            let name = k.as_scalar().unwrap_or_default();
            let mut known: Vec<&str> = self.known.clone();
            known.sort_unstable();
            let d = Diagnostic::error(format!("unknown key `{name}` in {}", self.what))
                .at(k.span)
                .maybe_hint(suggest::hint(name, known.iter().copied()))
                .hint(format!("valid keys are: {}", known.join(", ")));
            ctx.error(d);
        }
    }
}

/// Decoding context: the resolved params (for `${name}` substitution) and the diagnostics.
pub struct Ctx<'p> {
    pub params: &'p Params,
    pub diags: Diagnostics,
}

impl<'p> Ctx<'p> {
    pub fn new(params: &'p Params) -> Self {
        Ctx {
            params,
            diags: Diagnostics::new(),
        }
    }

    pub fn error(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// A scalar as text, with `${param}` substituted.
    pub fn string(&mut self, n: &Node, what: &str) -> Option<String> {
        match n.as_scalar() {
            Some(_) if n.is_null() => {
                self.error(
                    Diagnostic::error(format!("`{what}` is empty"))
                        .at(n.span)
                        .hint(format!("give `{what}` a value")),
                );
                None
            }
            Some(text) => self.substitute(text, n.span),
            None => {
                self.error(
                    Diagnostic::error(format!("`{what}` must be a text value, got {}", n.kind()))
                        .at(n.span),
                );
                None
            }
        }
    }

    /// Replaces `${name}` with the param's value; unknown names are reported.
    pub fn substitute(&mut self, text: &str, span: Span) -> Option<String> {
        match self.params.substitute(text) {
            Ok(s) => Some(s),
            Err(name) => {
                let d = Diagnostic::error(format!("unknown param `${{{name}}}`"))
                    .at(span)
                    .maybe_hint(suggest::hint(&name, self.params.names()))
                    .hint(format!(
                        "declare it under `params:`; declared params are: {}",
                        self.params.names().collect::<Vec<_>>().join(", ")
                    ));
                self.error(d);
                None
            }
        }
    }

    pub fn bool(&mut self, n: &Node, what: &str) -> Option<bool> {
        let text = self.string(n, what)?;
        match text.as_str() {
            "true" | "True" | "TRUE" => Some(true),
            "false" | "False" | "FALSE" => Some(false),
            _ => {
                self.error(
                    Diagnostic::error(format!("`{what}` must be true or false, got `{text}`"))
                        .at(n.span),
                );
                None
            }
        }
    }

    pub fn int(&mut self, n: &Node, what: &str) -> Option<i64> {
        let text = self.string(n, what)?;
        match text.trim().replace('_', "").parse::<i64>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.error(
                    Diagnostic::error(format!("`{what}` must be a whole number, got `{text}`"))
                        .at(n.span),
                );
                None
            }
        }
    }

    /// One of a fixed set of words, with "did you mean" on a typo.
    pub fn choice(&mut self, n: &Node, what: &str, allowed: &[&str]) -> Option<String> {
        let text = self.string(n, what)?;
        if allowed.contains(&text.as_str()) {
            return Some(text);
        }
        let d = Diagnostic::error(format!("`{what}` has the unknown value `{text}`"))
            .at(n.span)
            .maybe_hint(suggest::hint(&text, allowed.iter().copied()))
            .hint(format!("allowed values are: {}", allowed.join(", ")));
        self.error(d);
        None
    }

    /// A name or a list of names (`on: id` or `on: [a, b]`), with their spans.
    pub fn strings(&mut self, n: &Node, what: &str) -> Option<Vec<(String, Span)>> {
        match &n.value {
            Value::Scalar { .. } => self.string(n, what).map(|s| vec![(s, n.span)]),
            Value::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for item in items {
                    match self.string(item, what) {
                        Some(s) => out.push((s, item.span)),
                        None => ok = false,
                    }
                }
                ok.then_some(out)
            }
            Value::Map(_) => {
                self.error(
                    Diagnostic::error(format!(
                        "`{what}` must be a name or a list of names, got a mapping"
                    ))
                    .at(n.span),
                );
                None
            }
        }
    }

    /// An ordered mapping of name -> node (`columns: {a: expr, b: expr}`).
    pub fn entries<'n>(
        &mut self,
        n: &'n Node,
        what: &str,
    ) -> Option<Vec<(String, Span, &'n Node)>> {
        match &n.value {
            Value::Map(entries) => Some(
                entries
                    .iter()
                    .map(|(k, v)| (k.as_scalar().unwrap_or_default().to_string(), k.span, v))
                    .collect(),
            ),
            _ => {
                self.error(
                    Diagnostic::error(format!("`{what}` must be a mapping, got {}", n.kind()))
                        .at(n.span)
                        .hint("write one `name: value` per line"),
                );
                None
            }
        }
    }

    /// A list node (a single item is not accepted where order and count matter).
    pub fn seq<'n>(&mut self, n: &'n Node, what: &str) -> Option<&'n [Node]> {
        match &n.value {
            Value::Seq(items) => Some(items),
            _ => {
                self.error(
                    Diagnostic::error(format!("`{what}` must be a list, got {}", n.kind()))
                        .at(n.span)
                        .hint("write one `- item` per line"),
                );
                None
            }
        }
    }
}
