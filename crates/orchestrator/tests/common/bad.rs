//! Helpers for the bad-input tests: a sandbox folder with data, a pipeline and an output
//! folder, runs of the real binary in it, and snapshots of what the runs left.
#![allow(dead_code)]

use crate::common::{bin, code, stderr, stdout};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

/// What one run did.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Ran {
    fn of(o: &Output, elapsed: Duration) -> Ran {
        Ran {
            code: code(o),
            stdout: stdout(o),
            stderr: stderr(o),
            elapsed,
        }
    }

    /// Both streams, for assertions that do not care where a line went.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        Sandbox { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn data(&self, name: &str) -> PathBuf {
        self.path().join("data").join(name)
    }

    pub fn out(&self) -> PathBuf {
        self.path().join("out")
    }

    pub fn write_data(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.data(name), bytes).unwrap();
    }

    pub fn remove_data(&self, name: &str) {
        let _ = std::fs::remove_file(self.data(name));
    }

    pub fn write_pipeline(&self, yaml: &str) -> PathBuf {
        let p = self.path().join("p.yaml");
        std::fs::write(&p, yaml).unwrap();
        p
    }

    /// `orchestrator run p.yaml --param input_dir=<data> --param output_dir=<out> ARGS`.
    pub fn run(&self, args: &[&str]) -> Ran {
        self.run_env(&[], args)
    }

    /// [`Sandbox::run`] with extra environment variables.
    pub fn run_env(&self, env: &[(&str, &str)], args: &[&str]) -> Ran {
        let p = self.path().join("p.yaml");
        let input = format!("input_dir={}", self.path().join("data").display());
        let output = format!("output_dir={}", self.out().display());
        let t = Instant::now();
        let o = bin()
            .arg("run")
            .arg(&p)
            .args(["--param", &input, "--param", &output])
            .args(args)
            .envs(env.iter().copied())
            .output()
            .expect("failed to start orchestrator");
        Ran::of(&o, t.elapsed())
    }

    /// Every file under the output folder except the state folder, with its bytes.
    pub fn outputs(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        collect(&self.out(), &self.out(), &mut out);
        out
    }

    /// `orchestrator ARGS p.yaml --param output_dir=<out>` (for `state reset`, `status`).
    pub fn command(&self, args: &[&str]) -> Ran {
        let output = format!("output_dir={}", self.out().display());
        let t = Instant::now();
        let o = bin()
            .args(args)
            .arg(self.path().join("p.yaml"))
            .args(["--param", &output])
            .output()
            .expect("failed to start orchestrator");
        Ran::of(&o, t.elapsed())
    }

    /// Temporary files left anywhere in the sandbox (`*.tmp`).
    pub fn temp_files(&self) -> Vec<PathBuf> {
        let mut all = BTreeMap::new();
        collect_all(self.path(), &mut all);
        all.into_keys()
            .filter(|p| p.extension().is_some_and(|e| e == "tmp"))
            .collect()
    }
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == ".orchestrator") {
            continue;
        }
        if p.is_dir() {
            collect(root, &p, out);
        } else {
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            out.insert(rel, std::fs::read(&p).unwrap_or_default());
        }
    }
}

fn collect_all(dir: &Path, out: &mut BTreeMap<PathBuf, ()>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_all(&p, out);
        } else {
            out.insert(p, ());
        }
    }
}

/// Asserts that every expected piece of text is in `text`.
pub fn assert_has(case: &str, what: &str, text: &str, expected: &[&str]) {
    for e in expected {
        assert!(
            text.contains(e),
            "case `{case}`: {what} lacks `{e}`:\n{text}"
        );
    }
}

/// A deterministic pseudo-random generator (SplitMix64): reproducible fuzzing without a
/// dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}
