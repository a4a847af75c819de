//! What the subcommands write besides their captures: text on standard
//! output that fails loudly (a closed pipe is an error, not a panic or
//! silence), captures refused on a closed standard output, and the check
//! that an output does not overwrite an input.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to standard output and flushes them; a write error
/// (`EPIPE`, a full disk) is returned naming standard output.
pub fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| anyhow::anyhow!("standard output: {e}"))
}

/// [`write_stdout`] for text.
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    write_stdout(text.as_bytes())
}

/// Refuses `-` for `flag` when standard output was closed at start-up
/// (`moat gen --out - >&-`): the standard library then puts `/dev/null`
/// on descriptor 1, and the capture would be lost without an error.
pub fn stdout_usable(flag: &str) -> anyhow::Result<()> {
    if stdout_was_closed() {
        anyhow::bail!("{flag} -: standard output is closed (the capture would be lost)");
    }
    Ok(())
}

/// Whether descriptor 1 is the `/dev/null` the standard library opens
/// (read-write) in place of a closed standard output; a shell's
/// `>/dev/null` opens it write-only.
#[cfg(target_os = "linux")]
fn stdout_was_closed() -> bool {
    let null = std::fs::read_link("/proc/self/fd/1").is_ok_and(|t| t == Path::new("/dev/null"));
    let flags = std::fs::read_to_string("/proc/self/fdinfo/1").ok().and_then(|info| {
        info.lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|f| i32::from_str_radix(f.trim(), 8).ok())
    });
    null && flags.is_some_and(|f| f & libc::O_ACCMODE == libc::O_RDWR)
}

#[cfg(not(target_os = "linux"))]
fn stdout_was_closed() -> bool {
    false
}

/// Whether `a` and `b` name the same existing file (same device and
/// inode: hard links, symlinks and `./x` vs `x` included).
#[cfg(unix)]
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn links_and_spellings_of_one_file_are_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.pcap");
        std::fs::write(&a, b"x").unwrap();
        let b = dir.path().join("b.pcap");
        std::fs::write(&b, b"x").unwrap();
        assert!(same_file(&a, &dir.path().join(".").join("a.pcap")));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&a, &link).unwrap();
        assert!(same_file(&a, &link));
        let hard = dir.path().join("hard");
        std::fs::hard_link(&a, &hard).unwrap();
        assert!(same_file(&hard, &a));
        assert!(!same_file(&a, &b));
        assert!(!same_file(&a, &dir.path().join("missing")));
    }
}
