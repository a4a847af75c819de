//! Reading the files a config names (the cookie secret, the API token) and
//! the config file itself, with a bound on what is read.
//!
//! Contract: no read here grows without bound or blocks on a path that is
//! not a regular file. [`read_small_file`] refuses anything but a regular
//! file, judged before the file is opened (a FIFO would block `open`, and
//! `/dev/zero` or `/dev/urandom` never end), opens it non-blocking in case
//! it was swapped since, checks the opened file again and reads at most
//! [`SMALL_FILE_MAX`] bytes. [`read_config_text`] takes a pipe too (`moat
//! check -c <(...)`), but at most [`CONFIG_FILE_MAX`] bytes of it.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::path::Path;

use super::io_reason;

/// Largest secret or token file read: 64 KiB, far above any key (the
/// cookie key is derived from the file's bytes, a token travels in a
/// header).
pub const SMALL_FILE_MAX: u64 = 64 * 1024;

/// Largest config file read: 16 MiB, far above any real config (a config
/// with the most services the dataplane takes is well under 1 MiB).
pub const CONFIG_FILE_MAX: u64 = 16 * 1024 * 1024;

/// The whole content of the regular file `path`, at most
/// [`SMALL_FILE_MAX`] bytes. Errors read `<what> <path>: <reason>`
/// (`what`: "secret file", "token file", ...).
pub fn read_small_file(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    let fail = |reason: String| format!("{what} {}: {reason}", path.display());
    let meta = std::fs::metadata(path).map_err(|e| fail(io_reason(&e)))?;
    regular(&meta).map_err(fail)?;
    let file = open_nonblocking(path).map_err(|e| fail(io_reason(&e)))?;
    // Swapped for something else between the two looks?
    regular(&file.metadata().map_err(|e| fail(io_reason(&e)))?).map_err(fail)?;
    read_capped(file, SMALL_FILE_MAX).map_err(fail)
}

/// The text of the config file `path`: any readable file or pipe, at most
/// [`CONFIG_FILE_MAX`] bytes of UTF-8. The error is a reason (the caller
/// names the file).
pub fn read_config_text(path: &Path) -> Result<String, String> {
    let file = File::open(path).map_err(|e| io_reason(&e))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err("is a directory".into());
    }
    let bytes = read_capped(file, CONFIG_FILE_MAX)?;
    String::from_utf8(bytes).map_err(|e| format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()))
}

/// Reads `file` to its end, refusing it once it has more than `cap` bytes.
fn read_capped(file: File, cap: u64) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    file.take(cap + 1).read_to_end(&mut bytes).map_err(|e| io_reason(&e))?;
    if bytes.len() as u64 > cap {
        return Err(format!("larger than {} KiB", cap / 1024));
    }
    Ok(bytes)
}

/// `Ok` for a regular file, else what it is instead.
fn regular(m: &Metadata) -> Result<(), String> {
    if m.is_file() {
        return Ok(());
    }
    Err(format!("not a regular file ({})", kind(m)))
}

#[cfg(unix)]
fn kind(m: &Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(not(unix))]
fn kind(m: &Metadata) -> &'static str {
    if m.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

/// Opens `path` for reading without blocking on a FIFO (`O_NONBLOCK` has
/// no effect on a regular file's reads).
#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().read(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_files_are_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, b"0123456789abcdef\n").unwrap();
        assert_eq!(read_small_file(&p, "token file").unwrap(), b"0123456789abcdef\n");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; SMALL_FILE_MAX as usize]).unwrap();
        assert_eq!(read_small_file(&big, "secret file").unwrap().len(), 64 * 1024);
    }

    #[test]
    fn devices_directories_and_oversized_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (p, why) in [
            ("/dev/zero", "not a regular file (a character device)"),
            ("/dev/urandom", "not a regular file (a character device)"),
            (dir.path().to_str().unwrap(), "not a regular file (a directory)"),
        ] {
            let e = read_small_file(Path::new(p), "secret file").unwrap_err();
            assert_eq!(e, format!("secret file {p}: {why}"));
        }
        let missing = dir.path().join("missing");
        let e = read_small_file(&missing, "token file").unwrap_err();
        assert!(e.ends_with("missing: no such file"), "{e}");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; SMALL_FILE_MAX as usize + 1]).unwrap();
        let e = read_small_file(&big, "secret file").unwrap_err();
        assert!(e.ends_with("big: larger than 64 KiB"), "{e}");
    }

    /// A FIFO with no writer would block `open` for ever: it is refused
    /// from its metadata, before any open.
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let ok = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !ok.is_ok_and(|s| s.success()) {
            eprintln!("skipped: mkfifo is not available");
            return;
        }
        let e = read_small_file(&fifo, "secret file").unwrap_err();
        assert!(e.ends_with("fifo: not a regular file (a FIFO)"), "{e}");
    }

    #[test]
    fn config_text_is_capped() {
        let e = read_config_text(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(e, "larger than 16384 KiB");
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_config_text(dir.path()).unwrap_err(), "is a directory");
        let bin = dir.path().join("bin");
        std::fs::write(&bin, b"[node]\xff").unwrap();
        assert_eq!(read_config_text(&bin).unwrap_err(), "not UTF-8 text (byte 6)");
    }
}
