//! Typed pipeline params: declared in YAML with defaults, overridden with `--param k=v`,
//! and substituted as `${name}` into paths and expressions.

use std::collections::BTreeMap;
use std::fmt;

/// The type of a declared param; values are checked before anything runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    String,
    Int,
    Float,
    Bool,
    /// `yyyy-mm-dd`; the default `today` means today's date in UTC, read once at start-up.
    Date,
    /// A local path or URL prefix (`data`, `s3://bucket/prefix` later).
    Path,
}

impl ParamType {
    pub const NAMES: &'static [&'static str] = &["string", "int", "float", "bool", "date", "path"];

    pub fn parse(s: &str) -> Option<ParamType> {
        Some(match s {
            "string" => ParamType::String,
            "int" | "integer" => ParamType::Int,
            "float" | "number" => ParamType::Float,
            "bool" | "boolean" => ParamType::Bool,
            "date" => ParamType::Date,
            "path" => ParamType::Path,
            _ => return None,
        })
    }

    /// Checks a raw value and returns its canonical text, or why it does not fit.
    pub fn check(&self, raw: &str, today: chrono::NaiveDate) -> Result<String, String> {
        let v = raw.trim();
        match self {
            ParamType::String | ParamType::Path => Ok(raw.to_string()),
            ParamType::Int => v
                .parse::<i64>()
                .map(|i| i.to_string())
                .map_err(|_| format!("expected a whole number, got `{raw}`")),
            ParamType::Float => v
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(|f| f.to_string())
                .ok_or_else(|| format!("expected a number, got `{raw}`")),
            ParamType::Bool => match v {
                "true" | "false" => Ok(v.to_string()),
                _ => Err(format!("expected true or false, got `{raw}`")),
            },
            ParamType::Date => {
                if v == "today" {
                    return Ok(today.format("%Y-%m-%d").to_string());
                }
                chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .map_err(|_| format!("expected a date as yyyy-mm-dd (or `today`), got `{raw}`"))
            }
        }
    }
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ParamType::String => "string",
            ParamType::Int => "int",
            ParamType::Float => "float",
            ParamType::Bool => "bool",
            ParamType::Date => "date",
            ParamType::Path => "path",
        };
        f.write_str(s)
    }
}

/// Resolved param values (canonical text), by name.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Params {
    values: BTreeMap<String, (ParamType, String)>,
}

impl Params {
    pub fn insert(&mut self, name: &str, ty: ParamType, value: String) {
        self.values.insert(name.to_string(), (ty, value));
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|(_, v)| v.as_str())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, ParamType, &str)> {
        self.values
            .iter()
            .map(|(k, (t, v))| (k.as_str(), *t, v.as_str()))
    }

    /// Replaces every `${name}`; returns the first unknown name on failure.
    pub fn substitute(&self, text: &str) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let Some(j) = after.find('}') else {
                // An unterminated `${` is kept as text; the consumer reports what it means.
                out.push_str(&rest[i..]);
                return Ok(out);
            };
            let name = after[..j].trim();
            match self.get(name) {
                Some(v) => out.push_str(v),
                None => return Err(name.to_string()),
            }
            rest = &after[j + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Names of params that `text` refers to (for fingerprints: a step depends on them).
    pub fn referenced(text: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            let after = &rest[i + 2..];
            let Some(j) = after.find('}') else { break };
            names.push(after[..j].trim().to_string());
            rest = &after[j + 1..];
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()
    }

    #[test]
    fn substitutes_and_reports_unknown() {
        let mut p = Params::default();
        p.insert("as_of", ParamType::Date, "2024-01-31".into());
        assert_eq!(
            p.substitute("DATE '${as_of}' - x").unwrap(),
            "DATE '2024-01-31' - x"
        );
        assert_eq!(p.substitute("${ as_of }/a").unwrap(), "2024-01-31/a");
        assert_eq!(p.substitute("${asof}").unwrap_err(), "asof");
        assert_eq!(p.substitute("no params").unwrap(), "no params");
    }

    #[test]
    fn checks_types() {
        assert_eq!(
            ParamType::Date.check("today", today()).unwrap(),
            "2024-02-29"
        );
        assert!(ParamType::Date.check("2024-13-01", today()).is_err());
        assert!(ParamType::Int.check("3.5", today()).is_err());
        assert_eq!(ParamType::Int.check(" 30 ", today()).unwrap(), "30");
        assert!(ParamType::Bool.check("yes", today()).is_err());
    }
}
