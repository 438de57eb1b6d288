//! Where data lives: a path/URL abstraction, and atomic writes.
//!
//! Every location goes through [`Location`], so adding object storage (`s3://...`) later means
//! adding a variant here, not touching the steps. Writes go to a temporary file in the target
//! folder, are fsynced, then renamed into place: a reader never sees a half-written output.

use crate::error::RunError;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
}

impl Location {
    /// Parses a path as written in a pipeline. URLs with a scheme other than `file://` are
    /// refused with a clear message until their backend exists.
    pub fn parse(text: &str) -> Result<Location, String> {
        if let Some(rest) = text.strip_prefix("file://") {
            return Ok(Location::Local(PathBuf::from(rest)));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(format!(
                "`{scheme}://` locations are not supported yet; use a local path"
            ));
        }
        if text.trim().is_empty() {
            return Err("the path is empty".into());
        }
        Ok(Location::Local(PathBuf::from(text)))
    }

    pub fn local_path(&self) -> &Path {
        match self {
            Location::Local(p) => p,
        }
    }

    pub fn display(&self) -> String {
        match self {
            Location::Local(p) => p.display().to_string(),
        }
    }

    /// Whether this names a set of files (a glob such as `drops/*.csv`, or a folder written
    /// with a trailing `/` or existing as one) rather than one file.
    pub fn is_many(&self) -> bool {
        let text = self.display();
        text.contains(['*', '?', '[']) || text.ends_with('/') || self.local_path().is_dir()
    }

    /// The files this location names, sorted by path: itself, the files of a folder (not
    /// hidden, not in sub-folders), or those a glob matches. A set that matches nothing is
    /// empty; a single file that does not exist is an error.
    pub fn list(&self) -> Result<Vec<String>, RunError> {
        let text = self.display();
        if !self.is_many() {
            if self.local_path().is_file() {
                return Ok(vec![text]);
            }
            return Err(RunError::user(
                format!("input file `{text}` not found"),
                Some("check `path` and the `input_dir` param (`--param input_dir=...`)".into()),
            ));
        }
        let visible = |p: &Path| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        };
        let mut out: Vec<String> = if text.contains(['*', '?', '[']) {
            let paths = glob::glob(&text).map_err(|e| {
                RunError::user(
                    format!("`{text}` is not a valid glob: {e}"),
                    Some("use `*` for any name, for example `drops/*.csv`".into()),
                )
            })?;
            paths
                .filter_map(|p| p.ok())
                .filter(|p| visible(p))
                .map(|p| p.display().to_string())
                .collect()
        } else {
            let dir = self.local_path();
            match std::fs::read_dir(dir) {
                Ok(entries) => entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| visible(p))
                    .map(|p| p.display().to_string())
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(RunError::user(
                        format!("input folder `{text}` not found"),
                        Some("check `path` and the `input_dir` param".into()),
                    ))
                }
                Err(e) => return Err(RunError::io(dir.display(), e)),
            }
        };
        out.sort();
        Ok(out)
    }

    /// The extension, lower-cased (`csv`, `parquet`), used to pick a default format.
    pub fn extension(&self) -> Option<String> {
        self.local_path()
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
    }
}

/// A fully written file waiting under a temporary name beside its target, being made
/// durable (fsync) on a thread of its own. Dropping it deletes the temporary file;
/// [`Staged::commit`] waits for the fsync and renames it into place.
#[derive(Debug)]
pub struct Staged {
    tmp: tempfile::NamedTempFile,
    target: PathBuf,
    /// The fsync still running, if any.
    syncing: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Staged {
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Where the content waits until commit.
    pub fn temp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// Waits until the content is on disk. A run calls it for every file it staged before
    /// it renames any of them, so that a failed fsync publishes nothing.
    pub fn durable(&mut self) -> Result<(), RunError> {
        match self.syncing.take().map(|h| h.join()) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(RunError::write_failed(self.target.display(), e)),
            Some(Err(_)) => Err(RunError::internal(format!(
                "the fsync of `{}` panicked",
                self.target.display()
            ))),
        }
    }

    /// Waits for the content to be durable, renames it into place and syncs the folder
    /// entry.
    pub fn commit(mut self) -> Result<PathBuf, RunError> {
        self.durable()?;
        let target = self.target;
        self.tmp
            .persist(&target)
            .map_err(|e| RunError::io(target.display(), e.error))?;
        if let Some(dir) = target.parent() {
            sync_dir(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            });
        }
        Ok(target)
    }
}

/// Writes `target`'s future content into a temporary file beside it (same file system, so
/// the final rename is atomic) and makes it durable. Nothing is visible at `target` until
/// the returned [`Staged`] is committed. On any failure the temporary file is removed and
/// the error names the target (or the folder) and says what to do.
pub fn stage<F>(target: &Path, fill: F) -> Result<Staged, RunError>
where
    F: FnOnce(&mut File) -> Result<(), RunError>,
{
    let dir = folder_of(target);
    std::fs::create_dir_all(&dir).map_err(|e| folder_error(&dir, target, e))?;
    remove_stale_temps(target);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(e) = fault::injected(fault::Point::Create, target) {
        return Err(folder_error(&dir, target, e));
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| folder_error(&dir, target, e))?;
    fill(tmp.as_file_mut()).map_err(|e| write_error(target, e))?;
    if let Some(e) = fault::injected(fault::Point::Write, target) {
        return Err(RunError::write_failed(target.display(), e));
    }
    // Temporary files are created private (0600); an output is an ordinary file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = tmp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644));
    }
    tmp.as_file_mut()
        .flush()
        .map_err(|e| RunError::write_failed(target.display(), e))?;
    // The fsync runs beside the rest of the run: it mostly waits for the disk (about 0.2 s
    // for a 44 MB output here), and the run needs the file durable only when it commits.
    let file = tmp
        .as_file()
        .try_clone()
        .map_err(|e| RunError::write_failed(target.display(), e))?;
    let syncing = std::thread::Builder::new()
        .name("fsync".into())
        .spawn(move || file.sync_all())
        .map_err(|e| RunError::write_failed(target.display(), e))?;
    Ok(Staged {
        tmp,
        target: target.to_path_buf(),
        syncing: Some(syncing),
    })
}

/// The folder of `target` cannot be created, or no file can be created in it.
fn folder_error(dir: &Path, target: &Path, e: std::io::Error) -> RunError {
    // A file where a folder should be: name it (the OS only says "File exists" or "Not a
    // directory").
    let blocker = dir
        .ancestors()
        .find(|a| !a.as_os_str().is_empty() && a.exists())
        .filter(|a| !a.is_dir());
    if let Some(file) = blocker {
        return RunError::user(
            format!(
                "cannot write `{}`: `{}` is a file, not a folder",
                target.display(),
                file.display()
            ),
            Some("move that file away, or write somewhere else (`path`, or `--param output_dir=...`); previous outputs are unchanged".into()),
        );
    }
    let how = match e.kind() {
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            "the folder is not writable: check its permissions (`ls -ld`) and owner, or write somewhere else (`--param output_dir=...`)"
        }
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => DISK_FULL_HINT,
        _ => "check the folder, or write somewhere else (`--param output_dir=...`)",
    };
    RunError::user(
        format!(
            "cannot create `{}` in the folder `{}`: {e}",
            target.file_name().map_or_else(
                || target.display().to_string(),
                |n| n.to_string_lossy().into_owned()
            ),
            dir.display()
        ),
        Some(how.into()),
    )
}

/// What to do about a full disk.
pub const DISK_FULL_HINT: &str = "the disk is full: free some space on it (or write somewhere else, `--param output_dir=...`) and run again; previous outputs are unchanged";

/// A failure while filling a staged file: an I/O failure underneath (a full disk) becomes
/// a message that names the file; other errors are kept as they are.
fn write_error(target: &Path, e: RunError) -> RunError {
    match e.io_error() {
        Some(io) => RunError::write_failed(
            target.display(),
            std::io::Error::new(io.kind(), io.to_string()),
        ),
        // The Parquet writer reports I/O failures as text ("underlying IO error: No space
        // left on device (os error 28)").
        None if is_disk_full_text(&e.to_string()) => {
            RunError::write_failed(target.display(), std::io::Error::from_raw_os_error(28))
        }
        None => e,
    }
}

fn is_disk_full_text(text: &str) -> bool {
    [
        "No space left on device",
        "os error 28",
        "Disk quota exceeded",
    ]
    .iter()
    .any(|t| text.contains(t))
}

/// Stages and commits at once.
pub fn write_atomic<F>(target: &Path, fill: F) -> Result<(), RunError>
where
    F: FnOnce(&mut File) -> Result<(), RunError>,
{
    stage(target, fill)?.commit().map(|_| ())
}

/// The folder `target` is written in (`.` for a bare file name).
fn folder_of(target: &Path) -> PathBuf {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Removes temporary files a killed run left for `target` (`.<name>.*.tmp`). Runs on one
/// state folder are serialised by its lock, so no live writer owns them. Staging `target`
/// does it; an unchanged rerun, which keeps an output and never stages it, calls it too.
pub fn remove_stale_temps(target: &Path) {
    let dir = folder_of(target);
    let Some(name) = target.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let prefix = format!(".{name}.");
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let f = e.file_name().to_string_lossy().into_owned();
            if f.starts_with(&prefix) && f.ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Test-only fault injection, so that the fault tests (`crates/orchestrator/tests/faults.rs`)
/// can make a write fail the way a full disk or an unwritable folder does, as any user and on
/// any file system. Never set it in production.
///
/// `ORCHESTRATOR_FAULT_INJECT` holds comma-separated faults, read once per process:
///
/// - `enospc:<text>`: staging a file whose target path contains `<text>` fails after its
///   content was written, with "No space left on device" (ENOSPC);
/// - `eacces:<text>`: creating the temporary file for such a target fails with "Permission
///   denied" (EACCES), as in a folder that is not writable.
mod fault {
    use std::path::Path;
    use std::sync::OnceLock;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Point {
        /// Creating the temporary file.
        Create,
        /// Writing its content.
        Write,
    }

    fn faults() -> &'static [(Point, String)] {
        static FAULTS: OnceLock<Vec<(Point, String)>> = OnceLock::new();
        FAULTS.get_or_init(|| {
            std::env::var("ORCHESTRATOR_FAULT_INJECT")
                .unwrap_or_default()
                .split(',')
                .filter_map(|f| match f.trim().split_once(':')? {
                    ("enospc", t) if !t.is_empty() => Some((Point::Write, t.to_string())),
                    ("eacces", t) if !t.is_empty() => Some((Point::Create, t.to_string())),
                    _ => None,
                })
                .collect()
        })
    }

    /// The error injected at `point` for `target`, if any.
    pub fn injected(point: Point, target: &Path) -> Option<std::io::Error> {
        let shown = target.to_string_lossy();
        faults()
            .iter()
            .find(|(p, t)| *p == point && shown.contains(t.as_str()))
            .map(|(p, _)| match p {
                // ENOSPC and EACCES (Linux numbers; the kinds are what callers look at).
                Point::Write => std::io::Error::from_raw_os_error(28),
                Point::Create => std::io::Error::from_raw_os_error(13),
            })
    }
}

/// Makes a rename durable. Best effort: not every platform can open a directory.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        assert_eq!(
            Location::parse("data/a.csv")
                .unwrap()
                .extension()
                .as_deref(),
            Some("csv")
        );
        assert!(Location::parse("s3://bucket/a.csv")
            .unwrap_err()
            .contains("not supported"));
        assert!(Location::parse("").is_err());
    }

    #[test]
    fn atomic_write_replaces_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.txt");
        std::fs::write(&target, "old").unwrap();
        write_atomic(&target, |f| {
            f.write_all(b"new").map_err(|e| RunError::io("x", e))
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        // A failing writer leaves the old content and no temporary file behind.
        let err = write_atomic(&target, |_| Err(RunError::user("boom", None)));
        assert!(err.is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
