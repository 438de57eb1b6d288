//! `incremental: {column: c}`: rows whose `c` is above the largest `c` read before (a
//! high-water mark), the way extracts from a database are taken.
//!
//! Files whose content is unchanged are not read at all. Otherwise the source is read and
//! split: rows above the mark are new (one new part); the rows at or below it are taken as
//! already read. Their number must equal the rows read before: a row that arrived late
//! below the mark, or one removed, makes a full read (the run says so). A row edited in
//! place below the mark without changing the count is not seen: such a source should use
//! `append` (which hashes what it read) or a full refresh. Rows whose `c` is empty are never
//! above the mark; they count among the rows at or below it.

use super::{collect_new, hash_files, parts_dir, previous, SourceRead, Watermark};
use crate::plan::Plan;
use orch_steps::RunError;
use polars::prelude::*;
use std::path::{Path, PathBuf};

/// The largest value of the high-water column read so far.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HighWater {
    /// The column's type when it was read (a change of type makes a full read).
    pub dtype: String,
    pub mark: Mark,
    /// The value as the column shows it (`2021-03-01`), for messages.
    pub shown: String,
}

/// A mark, on the column's physical values (dates and timestamps as integers).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mark {
    Int(i64),
    Float(f64),
    Text(String),
}

/// Reads the rows of source `i` above its high-water mark on `column`.
pub fn read_column(
    plan: &Plan,
    i: usize,
    files: &[String],
    column: &str,
    earlier: super::Earlier<'_>,
    state_dir: &Path,
) -> Result<SourceRead, RunError> {
    let super::Earlier {
        prev,
        inputs,
        full_refresh,
        ..
    } = earlier;
    let s = &plan.steps[i];
    let (hashes, content) = hash_files(files, inputs)?;
    let (key, dir) = parts_dir(plan, i, state_dir);
    // The last read and its mark, or why it cannot be extended.
    let (own, mut reason) = match previous(prev, full_refresh, &key) {
        Ok(w) => match w.high_water.clone() {
            Some(hw) => (Some((w, hw)), None),
            None => (None, Some("no high-water mark was recorded".to_string())),
        },
        Err(why) => (None, Some(why)),
    };
    // Nothing changed since the last read: no parse at all.
    if let Some((w, _)) = &own {
        if w.prefix_hash == content {
            return Ok(SourceRead {
                step: i,
                old_parts: w.parts.iter().map(PathBuf::from).collect(),
                new_frame: None,
                new_part: None,
                incremental: true,
                watermark: w.clone(),
                note: "unchanged".into(),
                new_rows: 0,
                hashes,
                warnings: Vec::new(),
                elapsed: Default::default(),
            });
        }
    }
    let all = collect_new(
        plan,
        i,
        s.step.to_polars(Vec::new(), &[])?,
        &format!("`{}`", files.join("`, `")),
    )?;
    let values = all.column(column).map_err(|_| {
        RunError::user(
            format!(
                "step `{}`: the high-water column `{column}` is not in what was read",
                s.id
            ),
            Some("check `incremental.column` against the file's header".into()),
        )
    })?;
    let values = values.as_materialized_series().clone();
    let dtype = values.dtype().to_string();
    // Extending the last read: its parts, rows and mark are kept, the rows above the mark
    // are new. Otherwise every row is new.
    let mut kept = None;
    if let Some((w, hw)) = own {
        if hw.dtype != dtype {
            reason = Some(format!(
                "the column `{column}` was {} and is now {dtype}",
                hw.dtype
            ));
        } else {
            let above = above(&values, &hw.mark, &s.id, column)?;
            let new = all.filter(&above).map_err(|e| {
                RunError::engine(format!("step `{}`: rows above the mark", s.id), e)
            })?;
            let at_or_below = (all.height() - new.height()) as u64;
            if at_or_below != w.rows {
                reason = Some(format!(
                    "{at_or_below} rows have `{column}` at or below {} but {} were read: a row arrived late or was removed",
                    hw.shown, w.rows
                ));
            } else {
                kept = Some((w.parts, w.rows, hw, new));
            }
        }
    }
    let (mut parts, mut rows, mut mark, new) = match kept {
        Some((parts, rows, hw, new)) => (parts, rows, Some(hw), new),
        None => (Vec::new(), 0, None, all),
    };
    let old_parts: Vec<PathBuf> = parts.iter().map(PathBuf::from).collect();
    let new_rows = new.height() as u64;
    let new_values = new
        .column(column)
        .map(|c| c.as_materialized_series().clone());
    if let Ok(v) = &new_values {
        if let Some(top) = largest(v, &s.id, column)? {
            mark = Some(match mark {
                Some(old) if !greater(&top.mark, &old.mark) => old,
                _ => top,
            });
        }
    }
    let mut new_frame = None;
    let mut new_part = None;
    if new_rows > 0 {
        let short: String = crate::hash::hex_of(format!("{content}/{}", parts.len()).as_bytes())
            .chars()
            .take(16)
            .collect();
        let part = dir.join(format!("column-{:06}-{short}.parquet", parts.len()));
        parts.push(part.display().to_string());
        new_part = Some(part);
        new_frame = Some(new);
        rows += new_rows;
    }
    let shown = mark.as_ref().map_or("none".into(), |m| m.shown.clone());
    let note = match &reason {
        None => format!("{new_rows} new rows above the mark (`{column}` now up to {shown})"),
        Some(why) => format!("full read ({why}): {new_rows} rows"),
    };
    Ok(SourceRead {
        step: i,
        old_parts,
        new_frame,
        new_part,
        incremental: reason.is_none(),
        watermark: Watermark {
            bytes: 0,
            lines: None,
            ends_with_newline: true,
            prefix_hash: content,
            parts,
            rows,
            key,
            files: Vec::new(),
            high_water: mark,
        },
        note,
        new_rows,
        hashes,
        warnings: Vec::new(),
        elapsed: Default::default(),
    })
}

/// The column's values as marks are compared: integers (dates and timestamps included),
/// floats or text.
fn physical(values: &Series, step: &str, column: &str) -> Result<(Series, u8), RunError> {
    let dtype = values.dtype();
    let kind = if dtype.is_integer() || dtype.is_temporal() {
        0
    } else if dtype.is_float() {
        1
    } else if dtype.is_string() {
        2
    } else {
        return Err(RunError::user(
            format!("step `{step}`: the high-water column `{column}` is {dtype}, which has no order to keep a mark on"),
            Some("use an increasing id, a date or a timestamp column".into()),
        ));
    };
    let target = match kind {
        0 => DataType::Int64,
        1 => DataType::Float64,
        _ => DataType::String,
    };
    let phys = values
        .to_physical_repr()
        .cast(&target)
        .map_err(|e| RunError::engine(format!("step `{step}`: reading `{column}`"), e))?;
    Ok((phys, kind))
}

/// Rows whose value is above `mark` (empty values are not).
fn above(
    values: &Series,
    mark: &Mark,
    step: &str,
    column: &str,
) -> Result<BooleanChunked, RunError> {
    let (phys, _) = physical(values, step, column)?;
    let err = |e: PolarsError| RunError::engine(format!("step `{step}`: comparing `{column}`"), e);
    let mask = match mark {
        Mark::Int(v) => phys.i64().map_err(err)?.gt(*v),
        Mark::Float(v) => phys.f64().map_err(err)?.gt(*v),
        Mark::Text(v) => phys.str().map_err(err)?.gt(v.as_str()),
    };
    // Filtering keeps only `true`: an empty value is never above the mark.
    Ok(mask)
}

/// The largest value of `values`, if any is set.
fn largest(values: &Series, step: &str, column: &str) -> Result<Option<HighWater>, RunError> {
    let (phys, kind) = physical(values, step, column)?;
    let err =
        |e: PolarsError| RunError::engine(format!("step `{step}`: the largest `{column}`"), e);
    let mark = match kind {
        0 => phys.i64().map_err(err)?.max().map(Mark::Int),
        1 => phys.f64().map_err(err)?.max().map(Mark::Float),
        _ => phys
            .str()
            .map_err(err)?
            .iter()
            .flatten()
            .max()
            .map(|s| Mark::Text(s.to_string())),
    };
    let Some(mark) = mark else {
        return Ok(None);
    };
    let shown = values
        .max_reduce()
        .map(|s| s.value().to_string())
        .unwrap_or_default();
    Ok(Some(HighWater {
        dtype: values.dtype().to_string(),
        mark,
        shown: shown.trim_matches('"').to_string(),
    }))
}

fn greater(a: &Mark, b: &Mark) -> bool {
    match (a, b) {
        (Mark::Int(a), Mark::Int(b)) => a > b,
        (Mark::Float(a), Mark::Float(b)) => a > b,
        (Mark::Text(a), Mark::Text(b)) => a > b,
        _ => true,
    }
}
