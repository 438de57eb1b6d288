//! Diagnostics: user-facing problems with a location in the pipeline file and a hint.
//!
//! A pipeline is compiled in one pass that collects *every* problem (Vector's style), so the
//! compiler functions push into a [`Diagnostics`] list instead of returning on the first error.

use std::fmt;
use std::ops::Range;

/// A byte range in the pipeline source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span {
            start,
            end: end.max(start),
        }
    }

    pub fn range(&self) -> Range<usize> {
        self.start..self.end
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in a pipeline file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub span: Option<Span>,
    /// Short text shown under the caret.
    pub label: Option<String>,
    /// How to fix it: "did you mean ...", "valid columns are ...".
    pub hints: Vec<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span: None,
            label: None,
            hints: Vec::new(),
        }
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    pub fn at(mut self, span: Span) -> Self {
        self.span = Some(span);
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    pub fn maybe_hint(mut self, hint: Option<String>) -> Self {
        if let Some(h) = hint {
            self.hints.push(h);
        }
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for h in &self.hints {
            write!(f, "; {h}")?;
        }
        Ok(())
    }
}

/// A collection of diagnostics gathered while compiling one pipeline file.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    pub fn extend(&mut self, other: impl IntoIterator<Item = Diagnostic>) {
        self.items.extend(other);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn error_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    pub fn items(&self) -> &[Diagnostic] {
        &self.items
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.items
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Sorts by position so the report reads top to bottom.
    pub fn sort(&mut self) {
        self.items
            .sort_by_key(|d| d.span.map_or(usize::MAX, |s| s.start));
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// The text of a pipeline file, kept for rendering diagnostics with line and column.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: String,
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Source {
            name: name.into(),
            text: text.into(),
        }
    }

    /// Length of the line holding byte `offset`.
    fn line_len_at(&self, offset: usize) -> usize {
        let offset = floor_char_boundary(&self.text, offset);
        let start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let end = self.text[offset..]
            .find('\n')
            .map_or(self.text.len(), |i| offset + i);
        end - start
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    /// Renders diagnostics in rustc style (`error: ... --> file:line:col`, a snippet, hints).
    pub fn render(&self, diags: &[Diagnostic], color: bool) -> String {
        use codespan_reporting::diagnostic::{Diagnostic as CsDiag, Label};
        use codespan_reporting::files::SimpleFile;
        use codespan_reporting::term::{self, termcolor};

        let file = SimpleFile::new(self.name.as_str(), self.text.as_str());
        let config = term::Config::default();
        let mut buf = if color {
            termcolor::Buffer::ansi()
        } else {
            termcolor::Buffer::no_color()
        };
        for d in diags {
            let mut cs = match d.severity {
                Severity::Error => CsDiag::error(),
                Severity::Warning => CsDiag::warning(),
            }
            .with_message(shorten(&d.message));
            // A snippet of a huge line (a multi-megabyte scalar) would flood the terminal:
            // show such locations as `file:line:col` only.
            let huge = d
                .span
                .is_some_and(|sp| self.line_len_at(sp.start) > MAX_SNIPPET_LINE);
            if let (Some(span), true) = (d.span, huge) {
                let (l, c) = self.line_col(span.start);
                cs = cs.with_message(format!(
                    "{} (at {}:{l}:{c})",
                    shorten(&d.message),
                    self.name
                ));
            }
            if let (Some(span), false) = (d.span, huge) {
                let start = floor_char_boundary(&self.text, span.start);
                let end = floor_char_boundary(&self.text, span.end.max(start));
                let mut label = Label::primary((), start..end);
                if let Some(l) = &d.label {
                    label = label.with_message(l);
                }
                cs = cs.with_labels(vec![label]);
            }
            cs = cs.with_notes(
                d.hints
                    .iter()
                    .map(|h| format!("help: {}", shorten(h)))
                    .collect(),
            );
            // Writing to an in-memory buffer only fails on a bad span, which we clamp above.
            let _ = term::emit_to_write_style(&mut buf, &config, &file, &cs);
        }
        String::from_utf8_lossy(buf.as_slice()).into_owned()
    }

    /// One line per diagnostic: `file:line:col: error: message; hint`.
    pub fn render_short(&self, d: &Diagnostic) -> String {
        let sev = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match d.span {
            Some(s) => {
                let (l, c) = self.line_col(s.start);
                format!("{}:{l}:{c}: {sev}: {d}", self.name)
            }
            None => format!("{}: {sev}: {d}", self.name),
        }
    }
}

/// Longest source line shown as a snippet.
const MAX_SNIPPET_LINE: usize = 400;

/// Cuts very long texts (messages quoting a huge value) to a readable length.
fn shorten(text: &str) -> String {
    const MAX: usize = 300;
    if text.len() <= MAX {
        return text.to_string();
    }
    let cut = floor_char_boundary(text, MAX);
    format!("{}... ({} more bytes)", &text[..cut], text.len() - cut)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
