//! Crash safety: SIGKILL `orchestrator run` at random moments, then rerun, and check that
//! the outputs equal a clean run's and that the state folder still works.
//!
//! Seeded so that a failure can be replayed: `CRASH_SEED=1234 cargo test --release --test
//! crash`. `CRASH_KILLS` sets the number of kills (default 60).

mod common;

use common::*;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// xorshift64*: deterministic for a seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn args<'a>(
    pipeline: &'a str,
    as_of: &'a str,
    out: &'a str,
    data: &'a str,
    extra: &[&'a str],
) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "run".into(),
        pipeline.into(),
        "-p".into(),
        format!("as_of={as_of}"),
        "-p".into(),
        format!("output_dir={out}"),
        "-p".into(),
        format!("input_dir={data}"),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// Outputs of a clean run in a fresh folder, for comparison.
fn clean_outputs(pipeline: &str, as_of: &str, data: &str, dir: &Path) {
    let o = bin()
        .args(args(pipeline, as_of, &dir.display().to_string(), data, &[]))
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn sigkill_at_random_moments_never_corrupts_outputs_or_state() {
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_2026);
    let kills: usize = std::env::var("CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let mut rng = Rng(seed.max(1));
    let data = repo().join("data").display().to_string();
    let pipelines = ["pipelines/late_payment.yaml", "pipelines/product_mix.yaml"];
    let dates = ["2021-01-15", "2021-03-01", "2020-09-30"];

    // Reference outputs per (pipeline, as_of), from clean runs.
    let refs = tempfile::tempdir().unwrap();
    for p in pipelines {
        for d in dates {
            let dir = refs.path().join(format!(
                "{}-{d}",
                Path::new(p).file_stem().unwrap().to_string_lossy()
            ));
            clean_outputs(p, d, &data, &dir);
        }
    }

    let out = tempfile::tempdir().unwrap();
    let out_s = out.path().display().to_string();
    let mut killed = 0;
    let mut finished_before_kill = 0;
    while killed < kills {
        let p = pipelines[rng.below(2) as usize];
        let d = dates[rng.below(3) as usize];
        let extra: &[&str] = if rng.below(4) == 0 {
            &["--full-refresh"]
        } else {
            &[]
        };
        let mut child = bin()
            .args(args(p, d, &out_s, &data, extra))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Runs on the bundled data take tens of milliseconds: kill anywhere in 0-80 ms.
        std::thread::sleep(Duration::from_micros(rng.below(80_000)));
        match child.try_wait().unwrap() {
            Some(_) => finished_before_kill += 1,
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                killed += 1;
            }
        }
        // Whatever is on disk now is a complete output of some run: never a torn file.
        let stem = Path::new(p)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let csv = out.path().join(format!("{stem}.csv"));
        if csv.exists() {
            let text = std::fs::read_to_string(&csv).unwrap();
            let matches_one = dates.iter().any(|d| {
                std::fs::read_to_string(
                    refs.path()
                        .join(format!("{stem}-{d}"))
                        .join(format!("{stem}.csv")),
                )
                .unwrap()
                    == text
            });
            assert!(
                matches_one,
                "seed {seed}: {} is not a complete output of any run",
                csv.display()
            );
        }
        // The next run (not killed) succeeds and produces exactly the clean output.
        let o = bin().args(args(p, d, &out_s, &data, &[])).output().unwrap();
        assert_eq!(
            code(&o),
            0,
            "seed {seed}: rerun after a kill failed: {}",
            stderr(&o)
        );
        let reference = refs.path().join(format!("{stem}-{d}"));
        for ext in ["csv", "parquet"] {
            let got = std::fs::read(out.path().join(format!("{stem}.{ext}"))).unwrap();
            let want = std::fs::read(reference.join(format!("{stem}.{ext}"))).unwrap();
            if ext == "csv" {
                assert_eq!(
                    got, want,
                    "seed {seed}: {stem}.{ext} differs from a clean run after a kill"
                );
            } else {
                assert!(!got.is_empty());
            }
        }
    }
    // A completed run clears what killed runs left behind for its outputs.
    for p in pipelines {
        let o = bin()
            .args(args(p, dates[0], &out_s, &data, &[]))
            .output()
            .unwrap();
        assert_eq!(code(&o), 0);
    }
    let tmp = std::fs::read_dir(out.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp")
        })
        .count();
    eprintln!("crash test: seed {seed}, {killed} kills, {finished_before_kill} runs finished before their kill");
    assert_eq!(tmp, 0, "seed {seed}: temporary files left behind");
}
