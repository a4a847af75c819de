//! Files the management plane keeps under `[node] state_dir`, and the
//! folder itself: the runtime changes, the generated API token, attack
//! reports, the `--stats` file, the instance lock.
//!
//! Contract:
//! - [`write_atomic`] leaves at `path` either the old content or the new
//!   one, never a mix, even across a power loss: the bytes go to a new
//!   temporary file in the same folder, created with `O_EXCL` under an
//!   unpredictable name (`tempfile`), flushed to disk (`fsync`), renamed
//!   over `path` (atomic within one file system, POSIX `rename(2)`), and
//!   then the folder itself is flushed so that the rename is durable. A
//!   symlink planted at `path` or at a temporary name is never written
//!   through: the temporary file is new, and `rename` replaces the link
//!   itself.
//! - [`StateDir::open`] trusts a state folder only when this process's
//!   effective user owns it and no one else may write into it (a folder
//!   someone else controls can hold a planted `changes.json`, or links
//!   that redirect our writes). A missing folder is created `0700`. A
//!   symlink as the last component is followed only when root or we own the
//!   link, and the folder it names passes the same checks.
//! - [`StateLock`]: one running node per state folder (`moat.lock`, an
//!   exclusive `flock` held for the life of the process, the holder's PID
//!   written inside). The kernel releases it when the process dies, however
//!   it dies.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Name prefix of every temporary file [`write_atomic`] creates; stale ones
/// (left by a killed write) are removed by [`remove_stale_temps`].
pub const TEMP_PREFIX: &str = ".moat-tmp-";

/// The lock file under the state folder.
pub const LOCK_FILE: &str = "moat.lock";

fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Creates `dir` (and missing parents) owner-only, `0700`.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Writes `bytes` to `path` atomically and durably (see the module doc).
/// Creates the folder (`0700`) when missing. `mode`: Unix permissions of the
/// file (narrowed by the umask).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    replace(path, bytes, mode, true)
}

/// [`write_atomic`] without the two `fsync`s: readers still never see
/// half a file, but a power loss may leave the old content. For files
/// rewritten every second (`--stats`), where waiting on a busy disk would
/// hold up the management loop for nothing.
pub fn write_replace(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    replace(path, bytes, mode, false)
}

fn replace(path: &Path, bytes: &[u8], mode: u32, durable: bool) -> io::Result<()> {
    let dir = folder_of(path);
    create_private_dir(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    if durable {
        tmp.as_file().sync_all()?;
    }
    // On error the temporary file is removed when `PersistError` drops.
    tmp.persist(path).map_err(|e| e.error)?;
    if durable {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The content of `path`, `None` when there is no such file.
pub fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The effective user id of this process.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Removes the temporary files of writes that never finished (the process
/// was killed between create and rename) from `dir`: only regular files
/// named with [`TEMP_PREFIX`] (or the `.NAME.PID.tmp` of earlier versions)
/// that this user owns. Call it only while holding the [`StateLock`], so
/// that no write of ours is under way. Returns how many were removed.
pub fn remove_stale_temps(dir: &Path) -> io::Result<usize> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let me = euid();
    let mut n = 0;
    for e in rd {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name.starts_with(TEMP_PREFIX) || is_legacy_temp(name)) {
            continue;
        }
        // `symlink_metadata`: a link is never followed, nor removed.
        let m = fs::symlink_metadata(e.path())?;
        if m.file_type().is_file() && m.uid() == me {
            fs::remove_file(e.path())?;
            n += 1;
        }
    }
    Ok(n)
}

/// `.changes.json.1234.tmp`: the temporary name of versions before
/// [`TEMP_PREFIX`].
fn is_legacy_temp(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.').and_then(|r| r.strip_suffix(".tmp")) else {
        return false;
    };
    rest.rsplit_once('.')
        .is_some_and(|(file, pid)| !file.is_empty() && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Why a state folder is not trusted.
#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    #[error("state_dir {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("state_dir {path}: not a directory")]
    NotADirectory { path: PathBuf },
    #[error(
        "state_dir {path}: owned by uid {owner}, not by this user (uid {me}); refusing a folder \
         someone else controls (fix: chown {me} {path}, or choose another state_dir)"
    )]
    NotOwned { path: PathBuf, owner: u32, me: u32 },
    #[error(
        "state_dir {path}: mode {mode:04o} lets other users write into it; refusing \
         (fix: chmod 700 {path})"
    )]
    Writable { path: PathBuf, mode: u32 },
    #[error("state_dir {path}: a symlink owned by uid {owner} (neither root nor this user, uid {me}); refusing it")]
    ForeignLink { path: PathBuf, owner: u32, me: u32 },
    #[error("state_dir {path}: in use by another moat (pid {pid}); one node per state folder")]
    Locked { path: PathBuf, pid: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StateDirError + '_ {
    move |source| StateDirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A state folder that passed the checks of the module doc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    /// As configured.
    pub path: PathBuf,
}

impl StateDir {
    /// Creates `path` (`0700`) when missing, then checks it (see the
    /// module doc).
    pub fn open(path: &Path) -> Result<StateDir, StateDirError> {
        match fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => create_private_dir(path).map_err(io_err(path))?,
            Err(e) => return Err(io_err(path)(e)),
            Ok(_) => {}
        }
        Self::check(path)?;
        Ok(StateDir {
            path: path.to_path_buf(),
        })
    }

    /// Checks an existing `path` without creating anything (`Ok(false)`
    /// when it does not exist): what `moat check` and the loading of the
    /// runtime changes do before reading from it.
    pub fn check_existing(path: &Path) -> Result<bool, StateDirError> {
        match fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(path)(e)),
            Ok(_) => Self::check(path).map(|()| true),
        }
    }

    fn check(path: &Path) -> Result<(), StateDirError> {
        let me = euid();
        let link = fs::symlink_metadata(path).map_err(io_err(path))?;
        if link.file_type().is_symlink() && link.uid() != me && link.uid() != 0 {
            return Err(StateDirError::ForeignLink {
                path: path.to_path_buf(),
                owner: link.uid(),
                me,
            });
        }
        let m = fs::metadata(path).map_err(io_err(path))?;
        if !m.is_dir() {
            return Err(StateDirError::NotADirectory {
                path: path.to_path_buf(),
            });
        }
        if m.uid() != me {
            return Err(StateDirError::NotOwned {
                path: path.to_path_buf(),
                owner: m.uid(),
                me,
            });
        }
        let mode = m.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(StateDirError::Writable {
                path: path.to_path_buf(),
                mode,
            });
        }
        Ok(())
    }

    /// Takes the folder's instance lock (see [`StateLock`]).
    pub fn lock(&self) -> Result<StateLock, StateDirError> {
        StateLock::acquire(&self.path)
    }
}

/// The exclusive lock of one state folder, held until dropped (or until
/// the process ends).
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    pub path: PathBuf,
}

impl StateLock {
    /// Locks `dir/moat.lock` and writes our PID into it. Errors: another
    /// process holds it ([`StateDirError::Locked`], with the PID it wrote).
    pub fn acquire(dir: &Path) -> Result<StateLock, StateDirError> {
        let path = dir.join(LOCK_FILE);
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
            .map_err(io_err(&path))?;
        if let Err(e) = rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            if e == rustix::io::Errno::WOULDBLOCK {
                let mut pid = String::new();
                let _ = Read::by_ref(&mut f).take(32).read_to_string(&mut pid);
                let pid = match pid.trim() {
                    "" => "unknown".to_string(),
                    p => p.to_string(),
                };
                return Err(StateDirError::Locked {
                    path: dir.to_path_buf(),
                    pid,
                });
            }
            return Err(io_err(&path)(e.into()));
        }
        let write = |f: &mut File| -> io::Result<()> {
            f.set_len(0)?;
            f.rewind()?;
            writeln!(f, "{}", std::process::id())?;
            f.sync_all()
        };
        write(&mut f).map_err(io_err(&path))?;
        Ok(StateLock { _file: f, path })
    }
}

/// True when `path` exists and users other than its owner may read it
/// (the cookie secret, the API token): worth a warning at start-up.
pub fn readable_by_others(path: &Path) -> Option<u32> {
    let m = fs::metadata(path).ok()?;
    let mode = m.mode() & 0o7777;
    (mode & 0o044 != 0).then_some(mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_replace_whole_files_and_leave_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub").join("changes.json");
        assert_eq!(read_optional(&p).unwrap(), None);
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two, longer", 0o600).unwrap();
        assert_eq!(read_optional(&p).unwrap().as_deref(), Some(&b"two, longer"[..]));
        assert_eq!(names(p.parent().unwrap()), ["changes.json"]);
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let sub = fs::metadata(p.parent().unwrap()).unwrap();
        assert_eq!(sub.permissions().mode() & 0o777, 0o700, "created folders are private");
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write_atomic(&p, b"old", 0o600).unwrap();
        // A folder where the file should be: rename fails, the old file stays.
        let blocked = dir.path().join("d");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("x"), b"").unwrap();
        assert!(write_atomic(&blocked, b"new", 0o600).is_err());
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["d", "f"]);
    }

    #[test]
    fn a_symlink_at_the_target_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"theirs").unwrap();
        let p = dir.path().join("api.token");
        symlink(&victim, &p).unwrap();
        // The temporary names of older versions, planted as links too.
        for pid in [std::process::id(), 1, 2] {
            symlink(&victim, dir.path().join(format!(".api.token.{pid}.tmp"))).unwrap();
        }
        write_atomic(&p, b"secret", 0o600).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"theirs");
        assert!(!fs::symlink_metadata(&p).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(&p).unwrap(), b"secret");
    }

    #[test]
    fn stale_temporaries_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let outside = d.join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("keep"), b"x").unwrap();
        fs::write(d.join(format!("{TEMP_PREFIX}abc123")), b"half").unwrap();
        fs::write(d.join(".changes.json.4242.tmp"), b"half").unwrap();
        fs::write(d.join("changes.json"), b"{}").unwrap();
        fs::write(d.join(".changes.json.tmp"), b"not ours").unwrap();
        fs::write(d.join("notes.tmp"), b"not ours").unwrap();
        // A link with our prefix: neither followed nor removed.
        symlink(outside.join("keep"), d.join(format!("{TEMP_PREFIX}link"))).unwrap();
        // A folder with our prefix: left alone.
        fs::create_dir(d.join(format!("{TEMP_PREFIX}dir"))).unwrap();
        assert_eq!(remove_stale_temps(d).unwrap(), 2);
        assert_eq!(
            names(d),
            [
                ".changes.json.tmp",
                &format!("{TEMP_PREFIX}dir"),
                &format!("{TEMP_PREFIX}link"),
                "changes.json",
                "notes.tmp",
                "outside"
            ]
        );
        assert_eq!(fs::read(outside.join("keep")).unwrap(), b"x");
        // Someone else's file with our prefix stays.
        let foreign = d.join(format!("{TEMP_PREFIX}foreign"));
        fs::write(&foreign, b"x").unwrap();
        std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
        if euid() == 0 {
            assert_eq!(remove_stale_temps(d).unwrap(), 0);
            assert!(foreign.exists());
        }
        assert_eq!(remove_stale_temps(&d.join("missing")).unwrap(), 0);
    }

    #[test]
    fn state_dirs_are_created_private_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().join("a/b/state");
        assert!(!StateDir::check_existing(&s).unwrap());
        StateDir::open(&s).unwrap();
        assert_eq!(fs::metadata(&s).unwrap().mode() & 0o777, 0o700);
        assert!(StateDir::check_existing(&s).unwrap());

        fs::set_permissions(&s, fs::Permissions::from_mode(0o777)).unwrap();
        let e = StateDir::open(&s).unwrap_err().to_string();
        assert!(e.contains("mode 0777") && e.contains(s.to_str().unwrap()), "{e}");
        fs::set_permissions(&s, fs::Permissions::from_mode(0o750)).unwrap();
        StateDir::open(&s).unwrap();

        let file = dir.path().join("file");
        fs::write(&file, b"").unwrap();
        assert!(matches!(
            StateDir::open(&file).unwrap_err(),
            StateDirError::NotADirectory { .. }
        ));

        // Our own link to our own folder is followed.
        let link = dir.path().join("link");
        symlink(&s, &link).unwrap();
        StateDir::open(&link).unwrap();
    }

    #[test]
    fn foreign_state_dirs_and_links_are_refused() {
        if euid() != 0 {
            eprintln!("skipping: needs root to make files owned by another user");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let theirs = dir.path().join("theirs");
        fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let e = StateDir::open(&theirs).unwrap_err();
        assert!(matches!(e, StateDirError::NotOwned { owner: 65534, .. }), "{e}");
        assert!(e.to_string().contains("uid 65534"), "{e}");
        // A link another user made to our own folder.
        let ours = dir.path().join("ours");
        fs::create_dir(&ours).unwrap();
        let link = dir.path().join("link");
        symlink(&ours, &link).unwrap();
        std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
        assert!(matches!(
            StateDir::open(&link).unwrap_err(),
            StateDirError::ForeignLink { owner: 65534, .. }
        ));
    }

    #[test]
    fn a_second_lock_names_the_first_holder() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::open(dir.path()).unwrap();
        let held = s.lock().unwrap();
        let pid = std::process::id().to_string();
        assert_eq!(fs::read_to_string(&held.path).unwrap().trim(), pid);
        // flock locks belong to the open file description: a second open in
        // the same process conflicts too.
        match s.lock().unwrap_err() {
            StateDirError::Locked { pid: p, .. } => assert_eq!(p, pid),
            e => panic!("{e}"),
        }
        drop(held);
        s.lock().unwrap();
    }

    #[test]
    fn permissive_secret_files_are_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret");
        fs::write(&p, b"x").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(readable_by_others(&p), Some(0o644));
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(readable_by_others(&p), None);
        assert_eq!(readable_by_others(&dir.path().join("none")), None);
    }
}
