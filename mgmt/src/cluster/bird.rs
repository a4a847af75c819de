//! A client of BIRD 2's control socket: the line protocol `birdc` speaks.
//!
//! BIRD greets a new connection with `0001 BIRD 2.0.12 ready.`, then
//! answers each command line with a reply of one or more lines:
//! - `DDDD-text`: a line of code `DDDD`, more lines follow;
//! - `DDDD text`: the reply's last line;
//! - ` text` (a leading space): one more line of the previous code.
//!
//! Codes 0xxx say a command succeeded (`0011 P: enabled`, `0010 P: already
//! enabled`, `0009 P: disabled`, `0008 P: already disabled`), 1xxx and 2xxx
//! are table rows and headers (`1002` a row of `show protocols`), 8xxx a
//! runtime error and 9xxx a parse error (`9001 syntax error`, which is
//! also what an unknown protocol name gets). See BIRD's `doc/reply_codes`.
//!
//! Contract: [`parse_line`] and [`Reply::parse`] are pure and never panic
//! on any input (a unit test throws random and mutated replies at them;
//! they take `&str`, so a fuzz target is one line); [`Session`]
//! reads at most [`MAX_LINE`] bytes a line and [`MAX_LINES`] lines a reply,
//! with a timeout on every read and write, so a stuck or hostile peer
//! costs the management thread a bounded wait, never a hang.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest reply line read, bytes (BIRD's own lines are far shorter).
pub const MAX_LINE: usize = 4096;
/// Most lines read in one reply.
pub const MAX_LINES: usize = 10_000;

/// Reply codes (BIRD's `doc/reply_codes`).
pub mod code {
    pub const OK: u16 = 0;
    pub const WELCOME: u16 = 1;
    pub const ALREADY_DISABLED: u16 = 8;
    pub const DISABLED: u16 = 9;
    pub const ALREADY_ENABLED: u16 = 10;
    pub const ENABLED: u16 = 11;
    pub const PROTOCOL_ROW: u16 = 1002;
    /// From here on, an error (8xxx runtime, 9xxx parse).
    pub const FIRST_ERROR: u16 = 8000;
}

/// A reply line that is not BIRD's line protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("a reply line must start with four digits and `-` or a space, or with a space: {0:?}")]
    BadLine(String),
    #[error("a continuation line (leading space) before any coded line")]
    OrphanContinuation,
    #[error("the reply ended without a final line (`DDDD text`)")]
    Unterminated,
}

/// One reply line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// The line's code; `None` for a ` text` continuation line.
    pub code: Option<u16>,
    /// `DDDD text`: the reply's last line.
    pub last: bool,
    pub text: &'a str,
}

/// Parses one line, without its line ending.
pub fn parse_line(l: &str) -> Result<Line<'_>, ParseError> {
    if let Some(text) = l.strip_prefix(' ') {
        return Ok(Line {
            code: None,
            last: false,
            text,
        });
    }
    let b = l.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || !matches!(b[4], b'-' | b' ') {
        return Err(ParseError::BadLine(l.chars().take(80).collect()));
    }
    // Four ASCII digits: a valid u16, and index 5 is a char boundary.
    let code = b[..4].iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    Ok(Line {
        code: Some(code),
        last: b[4] == b' ',
        text: &l[5..],
    })
}

/// A whole reply: each line with its code (continuations take their
/// predecessor's), the last line's code first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub lines: Vec<(u16, String)>,
}

impl Reply {
    /// Parses a reply from its lines; the last must be a final line.
    pub fn parse<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<Reply, ParseError> {
        let mut b = ReplyBuilder::default();
        for l in lines {
            if let Some(r) = b.push(l)? {
                return Ok(r);
            }
        }
        Err(ParseError::Unterminated)
    }

    /// The code of the first error line (8xxx, 9xxx), if any.
    pub fn error(&self) -> Option<&(u16, String)> {
        self.lines.iter().find(|(c, _)| *c >= code::FIRST_ERROR)
    }

    /// The first line of code `c`.
    pub fn line(&self, c: u16) -> Option<&str> {
        self.lines.iter().find(|(k, _)| *k == c).map(|(_, t)| t.as_str())
    }

    /// The reply as one line, for logs and the API.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .lines
            .iter()
            .filter(|(_, t)| !t.trim().is_empty())
            .map(|(c, t)| format!("{c:04} {}", t.trim()))
            .collect();
        parts.join(" | ")
    }
}

/// Collects the lines of one reply.
#[derive(Debug, Default)]
struct ReplyBuilder {
    lines: Vec<(u16, String)>,
}

impl ReplyBuilder {
    /// Adds line `l`; the whole reply once `l` was its last line.
    fn push(&mut self, l: &str) -> Result<Option<Reply>, ParseError> {
        let line = parse_line(l)?;
        let code = match (line.code, self.lines.last()) {
            (Some(c), _) => c,
            (None, Some((c, _))) => *c,
            (None, None) => return Err(ParseError::OrphanContinuation),
        };
        self.lines.push((code, line.text.to_string()));
        if line.last {
            return Ok(Some(Reply {
                lines: std::mem::take(&mut self.lines),
            }));
        }
        Ok(None)
    }
}

/// A protocol's state in `show protocols` (BIRD's `proto_state_name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoState {
    Up,
    Start,
    Stop,
    Down,
    Other(String),
}

impl ProtoState {
    fn of(s: &str) -> ProtoState {
        match s {
            "up" => ProtoState::Up,
            "start" => ProtoState::Start,
            "stop" => ProtoState::Stop,
            "down" => ProtoState::Down,
            o => ProtoState::Other(o.to_string()),
        }
    }

    /// Enabled: up, or on its way up. A disabled protocol is `down` (or
    /// `stop` while it goes down).
    pub fn enabled(&self) -> bool {
        matches!(self, ProtoState::Up | ProtoState::Start)
    }
}

/// The state of protocol `name` in a `show protocols` reply: its `1002`
/// row is `name proto table state since info`.
pub fn protocol_state(r: &Reply, name: &str) -> Option<ProtoState> {
    r.lines
        .iter()
        .filter(|(c, _)| *c == code::PROTOCOL_ROW)
        .find_map(|(_, t)| {
            let mut f = t.split_whitespace();
            (f.next() == Some(name)).then(|| f.nth(2).map(ProtoState::of))?
        })
}

/// What went wrong talking to BIRD.
#[derive(Debug, thiserror::Error)]
pub enum BirdError {
    /// The socket cannot be reached or broke (BIRD not running, restarting).
    #[error("BIRD control socket {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("BIRD control socket {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: ParseError,
    },
    /// BIRD answered with an error.
    #[error("BIRD refused `{command}`: {reply}")]
    Refused { command: String, reply: String },
}

impl BirdError {
    /// The socket could not be used at all (as opposed to BIRD refusing).
    pub fn unreachable(&self) -> bool {
        !matches!(self, BirdError::Refused { .. })
    }
}

/// One connection to the control socket.
#[derive(Debug)]
pub struct Session {
    path: PathBuf,
    conn: BufReader<UnixStream>,
    /// The greeting's text (`BIRD 2.0.12 ready.`).
    pub greeting: String,
}

impl Session {
    /// Connects to `path` and reads BIRD's greeting; every read and write
    /// waits at most `timeout`.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Session, BirdError> {
        let io = |source| BirdError::Io {
            path: path.to_path_buf(),
            source,
        };
        let s = UnixStream::connect(path).map_err(io)?;
        s.set_read_timeout(Some(timeout)).map_err(io)?;
        s.set_write_timeout(Some(timeout)).map_err(io)?;
        let mut session = Session {
            path: path.to_path_buf(),
            conn: BufReader::new(s),
            greeting: String::new(),
        };
        let hello = session.read_reply()?;
        session.greeting = hello.line(code::WELCOME).unwrap_or_default().trim().to_string();
        Ok(session)
    }

    /// Sends `command` (one line, no line break) and reads its reply; an
    /// error reply is [`BirdError::Refused`].
    pub fn command(&mut self, command: &str) -> Result<Reply, BirdError> {
        debug_assert!(!command.contains('\n'));
        let io = |source| BirdError::Io {
            path: self.path.clone(),
            source,
        };
        let s = self.conn.get_mut();
        s.write_all(format!("{command}\n").as_bytes()).map_err(io)?;
        s.flush().map_err(io)?;
        let r = self.read_reply()?;
        match r.error() {
            Some(_) => Err(BirdError::Refused {
                command: command.to_string(),
                reply: r.summary(),
            }),
            None => Ok(r),
        }
    }

    /// `show protocols NAME`: its state, or [`BirdError::Refused`] when
    /// BIRD has no such protocol.
    pub fn protocol_state(&mut self, name: &str) -> Result<ProtoState, BirdError> {
        let command = format!("show protocols {name}");
        let r = self.command(&command)?;
        protocol_state(&r, name).ok_or_else(|| BirdError::Refused {
            command,
            reply: format!("no row for protocol {name}: {}", r.summary()),
        })
    }

    /// `enable NAME` or `disable NAME`; true when BIRD changed it (false:
    /// it already was).
    pub fn set_enabled(&mut self, name: &str, on: bool) -> Result<bool, BirdError> {
        let command = format!("{} {name}", if on { "enable" } else { "disable" });
        let r = self.command(&command)?;
        let (changed, already) = if on {
            (code::ENABLED, code::ALREADY_ENABLED)
        } else {
            (code::DISABLED, code::ALREADY_DISABLED)
        };
        if r.line(changed).is_some() {
            Ok(true)
        } else if r.line(already).is_some() {
            Ok(false)
        } else {
            Err(BirdError::Refused {
                command,
                reply: r.summary(),
            })
        }
    }

    fn read_reply(&mut self) -> Result<Reply, BirdError> {
        let mut b = ReplyBuilder::default();
        let mut buf = Vec::with_capacity(128);
        for _ in 0..MAX_LINES {
            buf.clear();
            let n = (&mut self.conn)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut buf)
                .map_err(|source| self.io(source))?;
            if n == 0 {
                return Err(self.io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            if buf.last() != Some(&b'\n') {
                return Err(self.io(std::io::Error::other(format!("a reply line over {MAX_LINE} bytes"))));
            }
            let text = String::from_utf8_lossy(&buf);
            let line = text.trim_end_matches(['\n', '\r']);
            if let Some(r) = b.push(line).map_err(|source| BirdError::Parse {
                path: self.path.clone(),
                source,
            })? {
                return Ok(r);
            }
        }
        Err(self.io(std::io::Error::other(format!("a reply over {MAX_LINES} lines"))))
    }

    fn io(&self, source: std::io::Error) -> BirdError {
        BirdError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BIRD 2.0.12's replies, captured from its control socket.
    const SHOW_DOWN: &[&str] = &[
        "2002-Name       Proto      Table      State  Since         Info",
        "1002-moat_vips  Static     master4    down   17:19:25.611  ",
        "0000 ",
    ];
    const SHOW_ALL_UP: &[&str] = &[
        "2002-Name       Proto      Table      State  Since         Info",
        "1002-moat_vips  Static     master4    up     17:19:26.353  ",
        "1006-  Channel ipv4",
        "     State:          UP",
        "     Input filter:   ACCEPT",
        " ",
        "0000 ",
    ];

    #[test]
    fn lines_codes_and_continuations() {
        assert_eq!(
            parse_line("0001 BIRD 2.0.12 ready."),
            Ok(Line {
                code: Some(1),
                last: true,
                text: "BIRD 2.0.12 ready."
            })
        );
        assert_eq!(
            parse_line("0011-moat_vips: enabled"),
            Ok(Line {
                code: Some(11),
                last: false,
                text: "moat_vips: enabled"
            })
        );
        let c = parse_line("     State:          UP").expect("continuation");
        assert_eq!((c.code, c.last), (None, false));
        for bad in ["", "0001", "001 x", "00a1 x", "0001x", "BIRD ready", "０００１ x"] {
            assert!(parse_line(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn replies_end_at_their_final_line() {
        let r = Reply::parse(SHOW_ALL_UP.iter().copied()).expect("reply");
        assert_eq!(r.lines.len(), 7);
        assert_eq!(r.lines[3].0, 1006, "a continuation takes the previous code");
        assert_eq!(protocol_state(&r, "moat_vips"), Some(ProtoState::Up));
        assert!(r.error().is_none());
        let r = Reply::parse(SHOW_DOWN.iter().copied()).expect("reply");
        assert_eq!(protocol_state(&r, "moat_vips"), Some(ProtoState::Down));
        assert!(!ProtoState::Down.enabled() && ProtoState::Start.enabled());
        assert_eq!(protocol_state(&r, "moat"), None, "names match whole");
        assert_eq!(
            Reply::parse(SHOW_DOWN[..2].iter().copied()),
            Err(ParseError::Unterminated)
        );
        assert_eq!(Reply::parse([" x", "0000 "]), Err(ParseError::OrphanContinuation));
    }

    /// Random lines, and real replies with bytes flipped, cut or
    /// repeated: every one parses or is refused, none panics.
    #[test]
    fn random_and_mutated_replies_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x00b1_2d00);
        let alphabet = b"0123456789- \t\nabcXYZ:.|\xc3\xa9";
        let real: Vec<&str> = SHOW_ALL_UP.iter().chain(SHOW_DOWN).copied().collect();
        for _ in 0..50_000 {
            let mut bytes: Vec<u8> = if rng.gen_bool(0.5) {
                real[rng.gen_range(0..real.len())].as_bytes().to_vec()
            } else {
                (0..rng.gen_range(0..12))
                    .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                    .collect()
            };
            for _ in 0..rng.gen_range(0..4) {
                if bytes.is_empty() {
                    break;
                }
                let i = rng.gen_range(0..bytes.len());
                match rng.gen_range(0..3) {
                    0 => bytes[i] = alphabet[rng.gen_range(0..alphabet.len())],
                    1 => bytes.truncate(i),
                    _ => bytes.insert(i, bytes[i]),
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse_line(&text);
            if let Ok(r) = Reply::parse(text.split('\n')) {
                let _ = (protocol_state(&r, "moat_vips"), r.error(), r.summary());
            }
        }
    }

    /// A peer that sends `script` after the greeting, whatever it is asked.
    fn peer(script: impl AsRef<[u8]> + Send + 'static) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bird.ctl");
        let l = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        std::thread::spawn(move || {
            if let Ok((mut c, _)) = l.accept() {
                let _ = c.write_all(b"0001 BIRD 2.0.12 ready.\n");
                let _ = c.write_all(script.as_ref());
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        (dir, path)
    }

    #[test]
    fn sessions_refuse_long_lines_cut_replies_and_garbage() {
        let t = Duration::from_millis(200);
        let (_d, p) = peer(b"0011-moat_vips: enabled\n0000 \n");
        let mut s = Session::connect(&p, t).expect("connect");
        assert_eq!(s.greeting, "BIRD 2.0.12 ready.");
        assert_eq!(s.set_enabled("moat_vips", true).ok(), Some(true));

        let (_d, p) = peer(format!("0000 {}\n", "x".repeat(MAX_LINE)));
        let e = Session::connect(&p, t)
            .expect("connect")
            .command("show status")
            .unwrap_err();
        assert!(e.to_string().contains("over 4096 bytes"), "{e}");

        // Half a reply, then silence: the read times out.
        let (_d, p) = peer(b"1002-moat_vips  Static  master4  up  17:19:26.353\n");
        let e = Session::connect(&p, t)
            .expect("connect")
            .protocol_state("moat_vips")
            .unwrap_err();
        assert!(e.unreachable(), "{e}");

        let (_d, p) = peer(b"HTTP/1.1 400 Bad Request\n");
        let e = Session::connect(&p, t)
            .expect("connect")
            .command("show status")
            .unwrap_err();
        assert!(matches!(e, BirdError::Parse { .. }), "{e}");

        let (_d, p) = peer(b"9001 syntax error, unexpected CF_SYM_UNDEFINED\n");
        let e = Session::connect(&p, t)
            .expect("connect")
            .set_enabled("nope", false)
            .unwrap_err();
        assert!(
            !e.unreachable() && e.to_string().contains("refused `disable nope`: 9001"),
            "{e}"
        );
    }

    #[test]
    fn errors_are_8xxx_and_9xxx() {
        let r = Reply::parse(["9001 syntax error, unexpected CF_SYM_UNDEFINED"]).expect("reply");
        assert_eq!(r.error().map(|e| e.0), Some(9001));
        assert_eq!(r.summary(), "9001 syntax error, unexpected CF_SYM_UNDEFINED");
        let r = Reply::parse(["0010-moat_vips: already enabled", "0000 "]).expect("reply");
        assert!(r.error().is_none());
        assert_eq!(r.line(code::ALREADY_ENABLED), Some("moat_vips: already enabled"));
    }
}
