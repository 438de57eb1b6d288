//! Run state under the state folder (by default `${output_dir}/.orchestrator/`):
//!
//! - [`StateLock`]: one run at a time per state folder. An OS file lock, so a killed run's
//!   lock disappears with its process and never blocks the next run.
//! - [`Store`]: the only code that touches the state database (redb). Per pipeline it keeps step records
//!   (fingerprint, outputs, cached results, watermarks) and the run history. A run's records
//!   are committed in one transaction, after the files they describe are durable.

use redb::ReadableDatabase;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("another run is using the state folder `{dir}` ({holder}); wait for it to finish, or use another --state-dir")]
    Locked { dir: String, holder: String },
    #[error("cannot use the state folder `{dir}`: {source}")]
    Io {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the state database `{file}` is damaged and cannot be read ({detail})")]
    Damaged { file: String, detail: String },
    #[error("state record is unreadable: {0}")]
    Corrupt(String),
}

impl StateError {
    /// What to do about it; `pipeline` is the pipeline file as given on the command line.
    pub fn hint(&self, pipeline: &str) -> Option<String> {
        match self {
            StateError::Damaged { file, .. } => {
                let dir = Path::new(file)
                    .parent()
                    .map_or_else(String::new, |d| d.display().to_string());
                Some(format!(
                    "run `orchestrator state reset {pipeline}` (it moves the damaged file aside and starts a new one), or delete the folder `{dir}`; outputs are not touched, and the next run recomputes everything"
                ))
            }
            StateError::Corrupt(_) => Some(format!(
                "run `orchestrator state reset {pipeline}` to forget the step records; the next run recomputes everything"
            )),
            StateError::Locked { .. } | StateError::Io { .. } => None,
        }
    }
}

/// Holds the state folder's lock for the life of a run.
pub struct StateLock {
    file: File,
    path: PathBuf,
}

impl StateLock {
    /// Takes the lock or fails at once, naming the process that holds it.
    pub fn acquire(dir: &Path) -> Result<StateLock, StateError> {
        let io = |source| StateError::Io {
            dir: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = if holder.trim().is_empty() {
                    "unknown process".to_string()
                } else {
                    holder.trim().to_string()
                };
                return Err(StateError::Locked {
                    dir: dir.display().to_string(),
                    holder,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        // Who holds it, for the message a second run prints.
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = write!(file, "pid {}", std::process::id());
        let _ = file.flush();
        Ok(StateLock { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// A file a step wrote, as recorded after the run that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FileRecord {
    pub path: String,
    pub size: u64,
    /// Content hash (xxh3-128, hex; see `orch_engine::hash`).
    pub hash: String,
    /// Modification time when written (ns since the epoch): a file with the same size and
    /// time is trusted without hashing it again (an unchanged rerun stays cheap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ns: Option<u64>,
    /// For input files: the status-change time and inode when hashed. Every write to a file
    /// changes its ctime (which, unlike mtime, cannot be set back), so a file with the same
    /// size, mtime, ctime and inode still has the recorded content. Set only when the file
    /// had been still for a while when hashed (a write in the same clock tick is not missed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctime_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ino: Option<u64>,
}

/// What the state knows about one step after its last successful run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct StepRecord {
    pub fingerprint: String,
    pub rows: Option<u64>,
    /// Files a sink wrote.
    pub outputs: Vec<FileRecord>,
    /// A materialised result kept under the state folder (`cache: true`).
    pub cache_file: Option<String>,
    /// Source progress (for incremental loads): free-form, owned by the step type.
    pub watermark: Option<serde_json::Value>,
    /// Files kept under the state folder for this step (its cached result, the parts of an
    /// incremental source) with their size and content hash when written: checked before
    /// they are reused, so that a damaged file is rebuilt instead of read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stored: Vec<FileRecord>,
    /// The step's fingerprint without the content of its incremental sources: equal between
    /// two runs when only appended rows differ, so the step may process just those rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_fp: Option<String>,
    /// The input files the step read, with their content hash and status when hashed: an
    /// unchanged file (same status) is not hashed again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<FileRecord>,
    /// For a data check that checked every row of its input: what it warned about. Its
    /// fingerprint covers the data and the checks, so a run of any pipeline meeting the
    /// same fingerprint again need not check again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validated: Option<Vec<String>>,
}

/// One step's line in a run record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRun {
    pub id: String,
    pub status: String,
    pub rows: Option<u64>,
    pub secs: f64,
    pub detail: Option<String>,
}

/// One run of one pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: u64,
    pub pipeline: String,
    pub params: Vec<(String, String)>,
    /// RFC 3339 timestamps.
    pub started: String,
    pub ended: String,
    pub status: String,
    pub error: Option<String>,
    pub steps: Vec<StepRun>,
}

/// The state database of a state folder.
///
/// redb, not sled: our SIGKILL crash test corrupted sled 0.34's snapshot (the next run could
/// not open the database); redb commits copy-on-write B-trees with fsync, so a killed run
/// leaves the last committed state readable.
pub struct Store {
    db: redb::Database,
    dir: PathBuf,
}

fn key(pipeline: &str, rest: &[u8]) -> Vec<u8> {
    let mut k = pipeline.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(rest);
    k
}

type Table = redb::TableDefinition<'static, &'static [u8], &'static [u8]>;
type Entry = (Vec<u8>, Vec<u8>);

/// Creates the tables once, so that read transactions always find them.
fn create_tables(db: &redb::Database) -> Result<(), redb::Error> {
    let tx = db.begin_write()?;
    tx.open_table(STEPS)?;
    tx.open_table(RUNS)?;
    tx.commit()?;
    Ok(())
}

/// The database file inside the state folder.
pub const DB_FILE: &str = "state.redb";

const STEPS: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("steps");
const RUNS: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("runs");

/// Every key of a pipeline starts with `pipeline\0`; this is the end of that range.
fn prefix_end(pipeline: &str) -> Vec<u8> {
    let mut k = pipeline.as_bytes().to_vec();
    k.push(1);
    k
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, StateError> {
        std::fs::create_dir_all(dir).map_err(|source| StateError::Io {
            dir: dir.display().to_string(),
            source,
        })?;
        let damaged = |e: &dyn std::fmt::Display| StateError::Damaged {
            file: dir.join(DB_FILE).display().to_string(),
            detail: e.to_string(),
        };
        let io = |source| StateError::Io {
            dir: dir.display().to_string(),
            source,
        };
        let file = dir.join(DB_FILE);
        if !file.exists() {
            // A new database is made under a temporary name and renamed into place: a run
            // killed while making it leaves no half-written file that would look damaged.
            // (Callers hold the state lock: a leftover temporary file is a killed run's.)
            let tmp = dir.join(format!("{DB_FILE}.new"));
            match std::fs::remove_file(&tmp) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
                _ => {}
            }
            create_tables(&redb::Database::create(&tmp).map_err(|e| damaged(&e))?)
                .map_err(|e| damaged(&e))?;
            std::fs::rename(&tmp, &file).map_err(io)?;
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        let db = redb::Database::create(&file).map_err(|e| damaged(&e))?;
        // Databases made by older versions may lack a table.
        create_tables(&db).map_err(|e| damaged(&e))?;
        Ok(Store {
            db,
            dir: dir.to_path_buf(),
        })
    }

    /// Opens the state database, or, when it is damaged, moves it aside (to
    /// `state.redb.damaged-<unix seconds>`) and starts a new, empty one. Returns where the
    /// damaged file went. For `orchestrator state reset`; callers hold the state lock.
    pub fn open_or_start_over(dir: &Path) -> Result<(Store, Option<PathBuf>), StateError> {
        match Store::open(dir) {
            Ok(s) => Ok((s, None)),
            Err(StateError::Damaged { .. }) => {
                let file = dir.join(DB_FILE);
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let aside = dir.join(format!("{DB_FILE}.damaged-{secs}"));
                std::fs::rename(&file, &aside).map_err(|source| StateError::Io {
                    dir: dir.display().to_string(),
                    source,
                })?;
                Ok((Store::open(dir)?, Some(aside)))
            }
            Err(e) => Err(e),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn err(&self, e: impl std::fmt::Display) -> StateError {
        StateError::Damaged {
            file: self.dir.join(DB_FILE).display().to_string(),
            detail: e.to_string(),
        }
    }

    /// All `(key, value)` pairs of a table, or of one pipeline's key range.
    fn scan(&self, table: Table, pipeline: Option<&str>) -> Result<Vec<Entry>, StateError> {
        use redb::ReadableTable;
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = tx.open_table(table).map_err(|e| self.err(e))?;
        let iter = match pipeline {
            Some(p) => {
                let (start, end) = (key(p, b""), prefix_end(p));
                t.range(start.as_slice()..end.as_slice())
            }
            None => t.iter(),
        }
        .map_err(|e| self.err(e))?;
        iter.map(|item| {
            let (k, v) = item.map_err(|e| self.err(e))?;
            Ok((k.value().to_vec(), v.value().to_vec()))
        })
        .collect()
    }

    pub fn step(&self, pipeline: &str, step: &str) -> Result<Option<StepRecord>, StateError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = tx.open_table(STEPS).map_err(|e| self.err(e))?;
        let k = key(pipeline, step.as_bytes());
        match t.get(k.as_slice()).map_err(|e| self.err(e))? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(v.value())
                .map(Some)
                .map_err(|e| StateError::Corrupt(e.to_string())),
        }
    }

    /// Every step record of a pipeline, by step id.
    pub fn steps(&self, pipeline: &str) -> Result<Vec<(String, StepRecord)>, StateError> {
        self.scan(STEPS, Some(pipeline))?
            .into_iter()
            .map(|(k, v)| {
                let id = String::from_utf8_lossy(&k[pipeline.len() + 1..]).into_owned();
                let rec =
                    serde_json::from_slice(&v).map_err(|e| StateError::Corrupt(e.to_string()))?;
                Ok((id, rec))
            })
            .collect()
    }

    /// Every step record of every pipeline, with its step id (for `cache prune`, and for
    /// what one pipeline may reuse from another's runs).
    pub fn all_steps(&self) -> Result<Vec<(String, StepRecord)>, StateError> {
        self.scan(STEPS, None)?
            .into_iter()
            .map(|(k, v)| {
                let id = match k.iter().position(|&b| b == 0) {
                    Some(at) => String::from_utf8_lossy(&k[at + 1..]).into_owned(),
                    None => String::new(),
                };
                let rec =
                    serde_json::from_slice(&v).map_err(|e| StateError::Corrupt(e.to_string()))?;
                Ok((id, rec))
            })
            .collect()
    }

    /// The next run number of a pipeline (1, 2, ...). Callers hold the state lock.
    pub fn next_run_id(&self, pipeline: &str) -> Result<u64, StateError> {
        let last = self.scan(RUNS, Some(pipeline))?.pop();
        Ok(match last {
            None => 1,
            Some((k, _)) => {
                <[u8; 8]>::try_from(&k[pipeline.len() + 1..])
                    .map(u64::from_be_bytes)
                    .unwrap_or(0)
                    + 1
            }
        })
    }

    /// Records a finished run and, for a successful one, its step records, in one durable
    /// transaction. Call only after the files the records point at are durable: a crash
    /// before this leaves the previous records in force.
    pub fn commit_run(
        &self,
        run: &RunRecord,
        records: &[(String, StepRecord)],
    ) -> Result<(), StateError> {
        let run_value = serde_json::to_vec(run).map_err(|e| StateError::Corrupt(e.to_string()))?;
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut steps = tx.open_table(STEPS).map_err(|e| self.err(e))?;
            for (id, r) in records {
                let v = serde_json::to_vec(r).map_err(|e| StateError::Corrupt(e.to_string()))?;
                steps
                    .insert(key(&run.pipeline, id.as_bytes()).as_slice(), v.as_slice())
                    .map_err(|e| self.err(e))?;
            }
            let mut runs = tx.open_table(RUNS).map_err(|e| self.err(e))?;
            runs.insert(
                key(&run.pipeline, &run.id.to_be_bytes()).as_slice(),
                run_value.as_slice(),
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Runs of a pipeline, oldest first.
    pub fn runs(&self, pipeline: &str) -> Result<Vec<RunRecord>, StateError> {
        self.scan(RUNS, Some(pipeline))?
            .into_iter()
            .map(|(_, v)| {
                serde_json::from_slice(&v).map_err(|e| StateError::Corrupt(e.to_string()))
            })
            .collect()
    }

    /// Forgets a pipeline's step records (all, or one step's). Run history is kept.
    pub fn reset(&self, pipeline: &str, step: Option<&str>) -> Result<usize, StateError> {
        let keys: Vec<Vec<u8>> = match step {
            Some(s) => vec![key(pipeline, s.as_bytes())],
            None => self
                .scan(STEPS, Some(pipeline))?
                .into_iter()
                .map(|(k, _)| k)
                .collect(),
        };
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        let mut n = 0;
        {
            let mut steps = tx.open_table(STEPS).map_err(|e| self.err(e))?;
            for k in keys {
                if steps
                    .remove(k.as_slice())
                    .map_err(|e| self.err(e))?
                    .is_some()
                {
                    n += 1;
                }
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: u64, status: &str) -> RunRecord {
        RunRecord {
            id,
            pipeline: "p".into(),
            params: vec![("as_of".into(), "2024-01-01".into())],
            started: "s".into(),
            ended: "e".into(),
            status: status.into(),
            error: None,
            steps: vec![],
        }
    }

    #[test]
    fn commits_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let rec = StepRecord {
            fingerprint: "abc".into(),
            rows: Some(3),
            ..Default::default()
        };
        store
            .commit_run(&run(1, "ok"), &[("a".into(), rec.clone())])
            .unwrap();
        store.commit_run(&run(2, "failed"), &[]).unwrap();
        assert_eq!(store.step("p", "a").unwrap(), Some(rec));
        assert_eq!(
            store.step("q", "a").unwrap(),
            None,
            "pipelines are separate"
        );
        let runs = store.runs("p").unwrap();
        assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(store.reset("p", None).unwrap(), 1);
        assert_eq!(store.step("p", "a").unwrap(), None);
        drop(store);
        // Reopening sees the same history.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.runs("p").unwrap().len(), 2);
    }

    #[test]
    fn a_damaged_database_is_named_and_can_be_started_over() {
        let dir = tempfile::tempdir().unwrap();
        Store::open(dir.path())
            .unwrap()
            .commit_run(&run(1, "ok"), &[])
            .unwrap();
        std::fs::write(dir.path().join(DB_FILE), b"not a database").unwrap();
        let err = Store::open(dir.path()).err().expect("damaged");
        assert!(err.to_string().contains("state.redb` is damaged"), "{err}");
        assert!(err
            .hint("p.yaml")
            .unwrap()
            .contains("orchestrator state reset p.yaml"));
        let (store, aside) = Store::open_or_start_over(dir.path()).unwrap();
        assert!(store.runs("p").unwrap().is_empty(), "a new, empty database");
        let aside = aside.expect("moved aside");
        assert_eq!(std::fs::read(aside).unwrap(), b"not a database");
    }

    #[test]
    fn second_lock_fails_with_the_holder_and_release_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let lock = StateLock::acquire(dir.path()).unwrap();
        let err = StateLock::acquire(dir.path())
            .err()
            .expect("second lock must fail");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains("another run"), "{msg}");
        drop(lock);
        StateLock::acquire(dir.path()).unwrap();
    }
}
