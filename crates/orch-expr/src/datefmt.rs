//! Date format patterns: a friendly syntax (`d/m/yyyy`) or strftime (`%d/%m/%Y`).
//!
//! Friendly elements: `yyyy` year, `yy` two-digit year, `mm` month 01-12, `m` month 1-12,
//! `dd` day 01-31, `d` day 1-31, `HH` hour 00-23, `H` hour 0-23, `MM` minutes, `SS`
//! seconds, and a single `T` as a literal separator. Lower-case `mm` is the month and
//! upper-case `MM` the minutes. Anything that is not a letter is copied as is. A pattern
//! containing `%` is taken as strftime and only validated.
//!
//! When parsing, padding does not matter: `d/m/yyyy` and `dd/mm/yyyy` both read
//! `6/11/2018` and `06/11/2018`. When formatting, single letters print without padding.

use chrono::format::{Item, StrftimeItems};

use crate::error::ExprError;

const ELEMENTS: &str = "yyyy, yy, mm, m, dd, d, HH, H, MM, SS (and T as a separator)";

/// Converts a pattern to a strftime format string.
pub fn to_strftime(pattern: &str) -> Result<String, ExprError> {
    if pattern.trim().is_empty() {
        return Err(ExprError::new("the date format is empty")
            .hint(format!("use elements such as {ELEMENTS}")));
    }
    if pattern.contains('%') {
        validate_strftime(pattern)?;
        return Ok(pattern.to_string());
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut fields = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !c.is_alphabetic() {
            out.push(c);
            i += 1;
            continue;
        }
        let mut j = i;
        while j < chars.len() && chars[j] == c {
            j += 1;
        }
        let run: String = chars[i..j].iter().collect();
        let spec = match run.as_str() {
            "yyyy" => "%Y",
            "yy" => "%y",
            "mm" => "%m",
            "m" => "%-m",
            "dd" => "%d",
            "d" => "%-d",
            "HH" => "%H",
            "H" => "%-H",
            "MM" => "%M",
            "SS" => "%S",
            "T" => "T",
            _ => {
                let mut e = ExprError::new(format!(
                    "unknown element `{run}` in date format '{pattern}'"
                ))
                .hint(format!(
                    "pattern elements are {ELEMENTS}; or write a strftime format such as %d/%m/%Y"
                ));
                if matches!(run.as_str(), "YYYY" | "YY" | "DD" | "D") {
                    e = e.hint("years and days are written in lower case: yyyy, dd");
                } else if matches!(run.as_str(), "hh" | "h" | "ss" | "s") {
                    e = e.hint("hours and seconds are written in upper case: HH, SS");
                }
                return Err(e);
            }
        };
        if spec != "T" {
            fields += 1;
        }
        out.push_str(spec);
        i = j;
    }
    if fields == 0 {
        return Err(ExprError::new(format!(
            "date format '{pattern}' has no date or time elements"
        ))
        .hint(format!("use elements such as {ELEMENTS}")));
    }
    Ok(out)
}

/// The strftime format to hand to polars for *parsing*. Padding flags do not change what
/// chrono accepts (`%d` reads `6` and `06`), but polars only takes its fast parser for
/// plain `%d`/`%m`/`%H` (falling back to chrono per value when a value is unpadded).
pub fn for_parsing(strftime: &str) -> String {
    strftime
        .replace("%-d", "%d")
        .replace("%-m", "%m")
        .replace("%-H", "%H")
}

fn validate_strftime(fmt: &str) -> Result<(), ExprError> {
    if StrftimeItems::new(fmt).any(|item| matches!(item, Item::Error)) {
        return Err(ExprError::new(format!("invalid strftime format '{fmt}'"))
            .hint("see https://docs.rs/chrono/latest/chrono/format/strftime/ or use a pattern such as dd/mm/yyyy"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn friendly_patterns() {
        assert_eq!(to_strftime("d/m/yyyy").unwrap(), "%-d/%-m/%Y");
        assert_eq!(to_strftime("dd/mm/yyyy").unwrap(), "%d/%m/%Y");
        assert_eq!(to_strftime("yyyy-mm-dd").unwrap(), "%Y-%m-%d");
        assert_eq!(to_strftime("m/d/yy").unwrap(), "%-m/%-d/%y");
        assert_eq!(
            to_strftime("yyyy-mm-dd HH:MM:SS").unwrap(),
            "%Y-%m-%d %H:%M:%S"
        );
        assert_eq!(to_strftime("yyyy-mm-ddTHH:MM").unwrap(), "%Y-%m-%dT%H:%M");
        assert_eq!(to_strftime("yyyymmdd").unwrap(), "%Y%m%d");
    }

    #[test]
    fn strftime_passes_through() {
        assert_eq!(to_strftime("%d/%m/%Y").unwrap(), "%d/%m/%Y");
        assert!(to_strftime("%Q").is_err());
    }

    #[test]
    fn bad_patterns() {
        let e = to_strftime("DD/MM/YYYY").unwrap_err();
        assert!(e.message.contains("unknown element `DD`"), "{e}");
        assert!(e.hints.iter().any(|h| h.contains("lower case")));
        assert!(to_strftime("").is_err());
        assert!(to_strftime("//").is_err());
        assert!(to_strftime("ddd").is_err());
    }

    #[test]
    fn parsing_format_drops_padding_flags() {
        assert_eq!(for_parsing("%-d/%-m/%Y %-H:%M"), "%d/%m/%Y %H:%M");
    }
}
