// TEMPORARY probe (bad-input work); deleted before hand-off.
use polars::prelude::*;
use std::any::Any;

fn typed_schema() -> Schema {
    [
        Field::new("a".into(), DataType::Int64),
        Field::new("b".into(), DataType::String),
        Field::new("c".into(), DataType::Date),
    ]
    .into_iter()
    .collect()
}

fn read(path: &str, ignore: bool, strs: bool) -> PolarsResult<DataFrame> {
    let mut r = LazyCsvReader::new(PlRefPath::new(path))
        .with_has_header(true)
        .with_ignore_errors(ignore)
        .with_raise_if_empty(false);
    let s = if strs {
        typed_schema()
            .iter()
            .map(|(n, _)| Field::new(n.clone(), DataType::String))
            .collect()
    } else {
        typed_schema()
    };
    r = r.with_dtype_overwrite(Some(Arc::new(s)));
    r.finish()?.collect()
}

struct Scan(String);
impl AnonymousScan for Scan {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn scan(&self, args: AnonymousScanArgs) -> PolarsResult<DataFrame> {
        eprintln!(
            "scan called: cols={:?} pred={:?} n_rows={:?}",
            args.with_columns, args.predicate, args.n_rows
        );
        match read(&self.0, false, false) {
            Ok(df) => Ok(df),
            Err(e) => Err(PolarsError::IO {
                error: Arc::new(std::io::Error::other(format!(
                    "MYERR wrapped: {}",
                    e.to_string().lines().next().unwrap()
                ))),
                msg: None,
            }),
        }
    }
    fn allows_projection_pushdown(&self) -> bool {
        true
    }
    fn allows_predicate_pushdown(&self) -> bool {
        true
    }
}

#[test]
fn probe() {
    for f in ["blank", "qempty", "blankcrlf"] {
        let p = format!("/tmp/probe/{f}.csv");
        for (i, s) in [(false, false), (true, false), (true, true)] {
            match read(&p, i, s) {
                Ok(df) => eprintln!("== {f} ignore={i} strs={s}: OK\n{df}"),
                Err(e) => eprintln!("== {f} ignore={i} strs={s}: ERR {e}"),
            }
        }
    }
    for f in ["nonnum", "nonutf8", "crlf"] {
        let p = format!("/tmp/probe/{f}.csv");
        let lf = LazyFrame::anonymous_scan(
            Arc::new(Scan(p)),
            ScanArgsAnonymous {
                schema: Some(Arc::new(typed_schema())),
                name: "csv",
                ..Default::default()
            },
        )
        .unwrap();
        let other = df!("a" => [1i64, 2, 3], "k" => ["p", "q", "r"])
            .unwrap()
            .lazy();
        let q = lf
            .filter(col("a").gt(lit(0)))
            .join(
                other,
                [col("a")],
                [col("a")],
                JoinArgs::new(JoinType::Inner),
            )
            .select([col("a"), col("k"), col("c")]);
        match q.collect() {
            Ok(df) => eprintln!("== anon {f}: OK\n{df}"),
            Err(e) => {
                let mut src: Option<&dyn std::error::Error> = Some(&e);
                eprintln!("== anon {f}: ERR display=[{e}] debug={e:?}");
                while let Some(s) = src {
                    eprintln!("   src: {s}");
                    src = s.source();
                }
            }
        }
    }
}
