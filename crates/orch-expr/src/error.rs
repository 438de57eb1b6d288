//! The one user-facing error type of this crate.

/// A problem in an expression, phrased for the pipeline author.
///
/// `message` says what is wrong (syntax errors include the column within the expression
/// text); `hints` say how to fix it ("did you mean `account_id`?"). `Display` shows the
/// message followed by one `hint: ...` line per hint, for callers that only print errors.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, thiserror::Error)]
#[error("{message}{}", hint_lines(.hints))]
pub struct ExprError {
    pub message: String,
    pub hints: Vec<String>,
}

fn hint_lines(hints: &[String]) -> String {
    hints.iter().map(|h| format!("\nhint: {h}")).collect()
}

impl ExprError {
    pub fn new(message: impl Into<String>) -> Self {
        ExprError {
            message: message.into(),
            hints: Vec::new(),
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    pub fn maybe_hint(mut self, hint: Option<String>) -> Self {
        self.hints.extend(hint);
        self
    }
}
