//! The only module that parses YAML.
//!
//! We read the parser's event stream (saphyr-parser) into our own [`Node`] tree so that every
//! node keeps its source span: the compiler can then report *all* problems with a line and
//! column, which serde-style "fail on the first error" decoding cannot do. Building the tree
//! ourselves also lets us bound what hostile input can cost: file size, nesting depth and the
//! number of nodes after alias expansion ("billion laughs") are all capped.

use crate::diag::{Diagnostic, Span};
use saphyr_parser::{Event, Parser, ScalarStyle};

/// Refuse pipeline files larger than this before parsing them.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;
/// Deepest nesting of mappings and sequences a pipeline may use.
pub const MAX_DEPTH: usize = 64;
/// Most nodes a document may expand to, counting every alias expansion.
pub const MAX_NODES: usize = 200_000;

/// One YAML node with its location.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar keeps its source text; typed readers interpret it on demand.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The scalar's text, whatever its YAML type (`30`, `true`, `abc`).
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match &self.value {
            Value::Scalar { text, plain: true } => match text.as_str() {
                "true" | "True" | "TRUE" => Some(true),
                "false" | "False" | "FALSE" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match &self.value {
            Value::Scalar { text, plain: true } => text.replace('_', "").parse().ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match &self.value {
            Value::Scalar { text, plain: true } => text.parse().ok(),
            _ => None,
        }
    }

    /// What kind of node this is, for "expected a list, got a mapping" messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Scalar { .. } if self.is_null() => "nothing (null)",
            Value::Scalar { .. } => "a scalar",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// Looks up a key in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_scalar() == Some(key))
            .map(|(_, v)| v)
    }
}

/// Parses one YAML document into a [`Node`] tree, or a single located diagnostic.
pub fn parse(text: &str) -> Result<Node, Diagnostic> {
    if text.len() > MAX_FILE_BYTES {
        return Err(Diagnostic::error(format!(
            "the pipeline file is {} bytes; pipeline files are limited to {} bytes",
            text.len(),
            MAX_FILE_BYTES
        ))
        .hint("a pipeline describes steps, not data: keep data in input files"));
    }
    let offsets = CharOffsets::new(text);
    let mut b = Builder {
        stack: Vec::new(),
        anchors: Vec::new(),
        docs: Vec::new(),
        nodes: 0,
        offsets: &offsets,
    };
    let mut parser = Parser::new_from_str(text);
    while let Some(ev) = parser.next_event() {
        match ev {
            Ok((ev, span)) => b.on_event(ev, span)?,
            Err(e) => {
                let at = offsets.byte(e.marker().index());
                return Err(Diagnostic::error(format!("invalid YAML: {}", e.info()))
                    .at(Span::new(at, at + 1))
                    .hint("check indentation and quoting near this position"));
            }
        }
    }
    let mut docs = b.docs;
    match docs.len() {
        0 => Err(Diagnostic::error("the pipeline file is empty")
            .hint("a pipeline needs at least `name:` and `steps:`")),
        1 => Ok(docs.remove(0)),
        _ => Err(Diagnostic::error("the file holds several YAML documents")
            .at(docs[1].span)
            .hint("put one pipeline per file (remove the `---` separators)")),
    }
}

/// Maps the parser's character indices to byte offsets (identical for ASCII text).
struct CharOffsets {
    bytes: Option<Vec<usize>>,
    len: usize,
}

impl CharOffsets {
    fn new(text: &str) -> Self {
        let bytes =
            (!text.is_ascii()).then(|| text.char_indices().map(|(b, _)| b).collect::<Vec<_>>());
        CharOffsets {
            bytes,
            len: text.len(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        match &self.bytes {
            None => char_index.min(self.len),
            Some(v) => v.get(char_index).copied().unwrap_or(self.len),
        }
    }
}

enum Frame {
    Seq {
        start: usize,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        start: usize,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

struct Builder<'a> {
    stack: Vec<Frame>,
    /// Anchored nodes by id, with their expanded size.
    anchors: Vec<(usize, Node, usize)>,
    docs: Vec<Node>,
    nodes: usize,
    offsets: &'a CharOffsets,
}

impl Builder<'_> {
    fn span(&self, s: saphyr_parser::Span) -> Span {
        Span::new(
            self.offsets.byte(s.start.index()),
            self.offsets.byte(s.end.index()),
        )
    }

    fn count(&mut self, n: usize, span: Span) -> Result<(), Diagnostic> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(Diagnostic::error(format!(
                "the pipeline expands to more than {MAX_NODES} YAML nodes"
            ))
            .at(span)
            .hint("aliases (`*name`) that expand into large structures are refused; write the structure out or simplify it"));
        }
        Ok(())
    }

    fn on_event(&mut self, ev: Event<'_>, span: saphyr_parser::Span) -> Result<(), Diagnostic> {
        let sp = self.span(span);
        match ev {
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => Ok(()),
            Event::DocumentStart(_) => Ok(()),
            Event::Scalar(text, style, anchor, _tag) => {
                self.count(1, sp)?;
                let node = Node {
                    value: Value::Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                    },
                    span: sp,
                };
                self.finish_node(node, anchor, 1)
            }
            Event::Alias(id) => {
                let Some((_, node, size)) = self.anchors.iter().find(|(a, _, _)| *a == id) else {
                    return Err(Diagnostic::error("alias refers to an unknown anchor").at(sp));
                };
                let (node, size) = (node.clone(), *size);
                self.count(size, sp)?;
                // The alias node keeps the location of the alias itself for error messages.
                let node = Node { span: sp, ..node };
                self.finish_node(node, 0, size)
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    return Err(Diagnostic::error(format!(
                        "the pipeline nests deeper than {MAX_DEPTH} levels"
                    ))
                    .at(sp)
                    .hint("flatten the structure"));
                }
                self.count(1, sp)?;
                let frame = if matches!(ev, Event::SequenceStart(..)) {
                    Frame::Seq {
                        start: sp.start,
                        anchor,
                        items: Vec::new(),
                    }
                } else {
                    Frame::Map {
                        start: sp.start,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                    }
                };
                self.stack.push(frame);
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return Ok(());
                };
                let (node, anchor) = match frame {
                    Frame::Seq {
                        start,
                        anchor,
                        items,
                    } => {
                        let end = items.last().map_or(sp.end, |n| n.span.end.max(sp.end));
                        (
                            Node {
                                value: Value::Seq(items),
                                span: Span::new(start, end),
                            },
                            anchor,
                        )
                    }
                    Frame::Map {
                        start,
                        anchor,
                        entries,
                        ..
                    } => {
                        let end = entries
                            .last()
                            .map_or(sp.end, |(_, v)| v.span.end.max(sp.end));
                        (
                            Node {
                                value: Value::Map(entries),
                                span: Span::new(start, end),
                            },
                            anchor,
                        )
                    }
                };
                let size = node_size(&node);
                self.finish_node(node, anchor, size)
            }
        }
    }

    fn finish_node(&mut self, node: Node, anchor: usize, size: usize) -> Result<(), Diagnostic> {
        if anchor != 0 {
            self.anchors.push((anchor, node.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => {
                match key.take() {
                    None => {
                        if !matches!(node.value, Value::Scalar { .. }) {
                            return Err(Diagnostic::error("mapping keys must be plain names")
                                .at(node.span)
                                .hint("use a name such as `columns:` as the key"));
                        }
                        if let Some((prev, _)) = entries
                            .iter()
                            .find(|(k, _)| k.as_scalar() == node.as_scalar())
                        {
                            let _ = prev;
                            return Err(Diagnostic::error(format!(
                            "duplicate key `{}`",
                            node.as_scalar().unwrap_or_default()
                        ))
                        .at(node.span)
                        .hint("each key may appear once in a mapping; remove or merge the repeats"));
                        }
                        *key = Some(node);
                    }
                    Some(k) => entries.push((k, node)),
                }
            }
        }
        Ok(())
    }
}

fn node_size(n: &Node) -> usize {
    match &n.value {
        Value::Scalar { .. } => 1,
        Value::Seq(items) => 1 + items.iter().map(node_size).sum::<usize>(),
        Value::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| node_size(k) + node_size(v))
                .sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_spans_and_scalars() {
        let text = "name: x\nsteps:\n  - id: a\n    n: 3\n";
        let root = parse(text).unwrap();
        let steps = root.get("steps").unwrap().as_seq().unwrap();
        let n = steps[0].get("n").unwrap();
        assert_eq!(n.as_i64(), Some(3));
        assert_eq!(&text[n.span.range()], "3");
        assert_eq!(root.get("name").unwrap().as_scalar(), Some("x"));
    }

    #[test]
    fn quoted_scalars_are_not_numbers() {
        let root = parse("a: '3'\nb: ~\n").unwrap();
        assert_eq!(root.get("a").unwrap().as_i64(), None);
        assert!(root.get("b").unwrap().is_null());
    }

    #[test]
    fn refuses_billion_laughs() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = format!("*a{}", i - 1);
            let items = vec![prev; 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{items}]\n"));
        }
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("more than"), "{}", err.message);
    }

    #[test]
    fn refuses_deep_nesting() {
        let text = "[".repeat(10_000) + &"]".repeat(10_000);
        let err = parse(&text).unwrap_err();
        // Either our depth cap or the parser's own recursion limit refuses it, with a location.
        assert!(
            err.message.contains("nests deeper") || err.message.contains("recursion limit"),
            "{}",
            err.message
        );
        assert!(err.span.is_some());
    }

    #[test]
    fn reports_duplicate_keys_and_syntax_errors() {
        let err = parse("a: 1\na: 2\n").unwrap_err();
        assert!(err.message.contains("duplicate key `a`"));
        let err = parse("a: [1, 2\n").unwrap_err();
        assert!(err.message.contains("invalid YAML"));
        assert!(err.span.is_some());
    }

    #[test]
    fn non_ascii_spans_are_byte_offsets() {
        let text = "name: é\nx: y\n";
        let root = parse(text).unwrap();
        let x = root.get("x").unwrap();
        assert_eq!(&text[x.span.range()], "y");
    }
}
