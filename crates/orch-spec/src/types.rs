//! Engine-neutral column types and schemas.
//!
//! Every engine (polars today, Spark later) maps these to its own types; the pipeline
//! compiler reasons only in these terms.

use std::fmt;

/// A column type as the pipeline language knows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DataType {
    Bool,
    Int64,
    Float64,
    String,
    Date,
    Datetime,
    List(Box<DataType>),
    /// The type of a bare `NULL` literal: compatible with every other type.
    Null,
}

impl DataType {
    pub fn is_numeric(&self) -> bool {
        matches!(self, DataType::Int64 | DataType::Float64 | DataType::Null)
    }

    pub fn is_temporal(&self) -> bool {
        matches!(self, DataType::Date | DataType::Datetime)
    }

    /// Parses a type name as written in YAML (`int64`, `string`, `date`, `list<string>`...).
    pub fn parse(name: &str) -> Option<DataType> {
        let n = name.trim().to_ascii_lowercase();
        if let Some(inner) = n.strip_prefix("list<").and_then(|r| r.strip_suffix('>')) {
            return DataType::parse(inner).map(|t| DataType::List(Box::new(t)));
        }
        Some(match n.as_str() {
            "bool" | "boolean" => DataType::Bool,
            "int" | "int64" | "integer" | "bigint" | "long" => DataType::Int64,
            "float" | "float64" | "double" | "decimal" | "number" => DataType::Float64,
            "string" | "str" | "utf8" | "text" | "varchar" => DataType::String,
            "date" => DataType::Date,
            "datetime" | "timestamp" => DataType::Datetime,
            _ => return None,
        })
    }

    /// Names accepted by [`DataType::parse`], for "did you mean" hints.
    pub const NAMES: &'static [&'static str] = &[
        "bool",
        "int64",
        "float64",
        "string",
        "date",
        "datetime",
        "list<string>",
    ];

    /// The common supertype of two types, if one exists (numeric widening, NULL).
    pub fn unify(&self, other: &DataType) -> Option<DataType> {
        use DataType::*;
        match (self, other) {
            (a, b) if a == b => Some(a.clone()),
            (Null, b) => Some(b.clone()),
            (a, Null) => Some(a.clone()),
            (Int64, Float64) | (Float64, Int64) => Some(Float64),
            (Date, Datetime) | (Datetime, Date) => Some(Datetime),
            _ => None,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataType::Bool => f.write_str("bool"),
            DataType::Int64 => f.write_str("int64"),
            DataType::Float64 => f.write_str("float64"),
            DataType::String => f.write_str("string"),
            DataType::Date => f.write_str("date"),
            DataType::Datetime => f.write_str("datetime"),
            DataType::List(t) => write!(f, "list<{t}>"),
            DataType::Null => f.write_str("null"),
        }
    }
}

/// An ordered list of named, typed columns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Schema {
    fields: Vec<(String, DataType)>,
}

impl Schema {
    pub fn new(fields: Vec<(String, DataType)>) -> Self {
        Schema { fields }
    }

    pub fn fields(&self) -> &[(String, DataType)] {
        &self.fields
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&DataType> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|(n, _)| n.as_str())
    }

    /// Adds a column, or replaces the type of an existing one in place (keeping its position).
    pub fn upsert(&mut self, name: &str, dtype: DataType) {
        match self.fields.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = dtype,
            None => self.fields.push((name.to_string(), dtype)),
        }
    }

    /// "valid columns are `a`, `b`, `c`": for error messages.
    pub fn describe_columns(&self) -> String {
        if self.fields.is_empty() {
            return "the input has no columns".to_string();
        }
        // A damaged header (a whole file on one line) can have thousands of "columns": show
        // the first ones, each cut short, and say how many there are.
        const SHOWN: usize = 30;
        const NAME_CHARS: usize = 40;
        let list: Vec<String> = self
            .fields
            .iter()
            .take(SHOWN)
            .map(|(n, _)| {
                let shown = match n.char_indices().nth(NAME_CHARS) {
                    Some((cut, _)) => format!("{}...", &n[..cut]),
                    None => n.clone(),
                };
                // Line breaks inside a name would break the message's lines.
                let shown = shown.replace('\r', "\\r").replace('\n', "\\n");
                format!("`{shown}`")
            })
            .collect();
        let more = self.fields.len().saturating_sub(SHOWN);
        if more > 0 {
            format!("valid columns are {} and {more} more", list.join(", "))
        } else {
            format!("valid columns are {}", list.join(", "))
        }
    }
}

impl FromIterator<(String, DataType)> for Schema {
    fn from_iter<I: IntoIterator<Item = (String, DataType)>>(iter: I) -> Self {
        Schema {
            fields: iter.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_column_list_is_cut_and_counted() {
        let few: Schema = [("a", DataType::Int64), ("b", DataType::String)]
            .into_iter()
            .map(|(n, t)| (n.to_string(), t))
            .collect();
        assert_eq!(few.describe_columns(), "valid columns are `a`, `b`");
        // A damaged header: 100 "columns", one of them long and holding a line break.
        let many: Schema = (0..100)
            .map(|i| {
                let name = if i == 0 {
                    format!("x\r{}", "y".repeat(100))
                } else {
                    format!("c{i}")
                };
                (name, DataType::String)
            })
            .collect();
        let text = many.describe_columns();
        assert!(text.starts_with("valid columns are `x\\ryyy"), "{text}");
        assert!(text.contains("...`, `c1`"), "{text}");
        assert!(text.ends_with("`c29` and 70 more"), "{text}");
        assert!(!text.contains('\r') && text.len() < 400, "{text}");
    }
}
