//! The client's HTTP/1.1 side: the request (built once per run) and a
//! streaming parser of the response that keeps a few integers of state per
//! connection, so that a segment's bytes are read once, in place, whatever
//! way the response is cut into segments.
//!
//! What the parser reads (RFC 9112): the status line (`HTTP/1.x NNN ...`),
//! the header lines, of which only `Content-Length` matters, and the body:
//! `Content-Length` bytes when given, else everything up to the server's
//! FIN (§6.3 rule 8, "read until the connection closes"; the request says
//! `Connection: close`, so a chunked answer also ends with the
//! connection). Anything else where the status line should be is a bad
//! answer.

/// A GET request for `path` on `host` (the `Host` header, e.g. the VIP).
pub fn request(host: &str, path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: moat-loadtest\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// Where the parser is in the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    /// Matching `HTTP/` (the index of the next byte to match).
    #[default]
    Magic,
    /// The version digits, up to the space before the status code.
    Version,
    /// The three status digits (how many read so far).
    Status(u8),
    /// The reason phrase, up to the end of the line.
    Reason,
    /// At the start of a header line.
    LineStart,
    /// After a `\r` at the start of a line: the empty line's `\n` follows.
    EmptyLineCr,
    /// Matching the header name `content-length` (bytes matched so far).
    Name(u8),
    /// Spaces after `Content-Length:`.
    ValueStart,
    /// Digits of the length.
    Value,
    /// The rest of a header line that does not matter.
    SkipLine,
    /// In the body.
    Body,
}

const MAGIC: &[u8] = b"HTTP/";
const CONTENT_LENGTH: &[u8] = b"content-length:";

/// What the bytes fed so far amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The response is not complete yet.
    More,
    /// Headers and the whole body (by `Content-Length`) have arrived.
    Complete,
    /// Not an HTTP response.
    Bad,
}

/// The state of one response being read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Response {
    phase: Phase,
    magic: u8,
    status: u16,
    length: Option<u64>,
    body: u64,
}

impl Response {
    /// The status code, once its three digits are in.
    pub fn status(&self) -> Option<u16> {
        (self.status >= 100 && !matches!(self.phase, Phase::Magic | Phase::Version | Phase::Status(_)))
            .then_some(self.status)
    }

    /// Body bytes received.
    pub fn body_len(&self) -> u64 {
        self.body
    }

    /// Reads the next bytes of the response (what follows a complete one is
    /// ignored).
    pub fn feed(&mut self, data: &[u8]) -> Progress {
        for (i, &b) in data.iter().enumerate() {
            if self.phase == Phase::Body {
                return self.body_bytes((data.len() - i) as u64);
            }
            if !self.step(b) {
                return Progress::Bad;
            }
        }
        self.progress()
    }

    /// The end of the stream (the server's FIN): a response without
    /// `Content-Length` is complete now; one cut short is bad.
    pub fn finish(&mut self) -> Progress {
        match (self.phase, self.length) {
            (Phase::Body, None) => Progress::Complete,
            (Phase::Body, Some(n)) if self.body >= n => Progress::Complete,
            _ => Progress::Bad,
        }
    }

    fn progress(&self) -> Progress {
        match (self.phase, self.length) {
            (Phase::Body, Some(n)) if self.body >= n => Progress::Complete,
            _ => Progress::More,
        }
    }

    fn body_bytes(&mut self, n: u64) -> Progress {
        self.body = self.body.saturating_add(n);
        self.progress()
    }

    /// One byte of the status line or headers; false when it cannot be
    /// part of a response.
    fn step(&mut self, b: u8) -> bool {
        self.phase = match self.phase {
            Phase::Magic => {
                if MAGIC.get(usize::from(self.magic)) != Some(&b) {
                    return false;
                }
                self.magic += 1;
                if usize::from(self.magic) == MAGIC.len() {
                    Phase::Version
                } else {
                    Phase::Magic
                }
            }
            Phase::Version => match b {
                b' ' => Phase::Status(0),
                b'0'..=b'9' | b'.' => Phase::Version,
                _ => return false,
            },
            Phase::Status(n) => {
                if !b.is_ascii_digit() {
                    return false;
                }
                self.status = self.status * 10 + u16::from(b - b'0');
                if n == 2 {
                    Phase::Reason
                } else {
                    Phase::Status(n + 1)
                }
            }
            Phase::Reason | Phase::SkipLine => self.line_end(b, self.phase),
            Phase::LineStart => match b {
                b'\r' => Phase::EmptyLineCr,
                b'\n' => self.headers_done(),
                _ => self.name(0, b),
            },
            Phase::EmptyLineCr => {
                if b != b'\n' {
                    return false;
                }
                self.headers_done()
            }
            Phase::Name(n) => self.name(n, b),
            Phase::ValueStart => match b {
                b' ' | b'\t' => Phase::ValueStart,
                b'0'..=b'9' => self.digit(b),
                _ => self.line_end(b, Phase::SkipLine),
            },
            Phase::Value => match b {
                b'0'..=b'9' => self.digit(b),
                _ => self.line_end(b, Phase::SkipLine),
            },
            Phase::Body => Phase::Body,
        };
        true
    }

    /// A `\n` ends the line; anything else keeps `rest`.
    fn line_end(&self, b: u8, rest: Phase) -> Phase {
        if b == b'\n' {
            Phase::LineStart
        } else {
            rest
        }
    }

    /// Byte `n` of a header name: still `content-length:`, or another header.
    fn name(&mut self, n: u8, b: u8) -> Phase {
        if CONTENT_LENGTH.get(usize::from(n)) != Some(&b.to_ascii_lowercase()) {
            return self.line_end(b, Phase::SkipLine);
        }
        if usize::from(n) + 1 == CONTENT_LENGTH.len() {
            Phase::ValueStart
        } else {
            Phase::Name(n + 1)
        }
    }

    fn digit(&mut self, b: u8) -> Phase {
        let v = self.length.unwrap_or(0);
        self.length = Some(v.saturating_mul(10).saturating_add(u64::from(b - b'0')));
        Phase::Value
    }

    /// After the empty line. 1xx answers (RFC 9110 §15.2) carry no body and
    /// precede the real one: start over.
    fn headers_done(&mut self) -> Phase {
        if (100..200).contains(&self.status) {
            *self = Response::default();
            return Phase::Magic;
        }
        Phase::Body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = b"HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.2\r\nContent-type: text/html\r\nContent-Length: 5\r\n\r\nhello";

    #[test]
    fn a_whole_response_in_one_segment() {
        let mut r = Response::default();
        assert_eq!(r.feed(OK), Progress::Complete);
        assert_eq!(r.status(), Some(200));
        assert_eq!(r.body_len(), 5);
    }

    #[test]
    fn cut_anywhere_the_result_is_the_same() {
        for cut in 0..OK.len() {
            let mut r = Response::default();
            assert_eq!(r.feed(&OK[..cut]), Progress::More, "cut at {cut}");
            assert_eq!(r.feed(&OK[cut..]), Progress::Complete, "cut at {cut}");
            assert_eq!((r.status(), r.body_len()), (Some(200), 5));
        }
        let mut r = Response::default();
        for b in OK {
            let _ = r.feed(std::slice::from_ref(b));
        }
        assert_eq!(r.progress(), Progress::Complete);
    }

    #[test]
    fn without_a_length_the_body_ends_with_the_connection() {
        let mut r = Response::default();
        assert_eq!(r.feed(b"HTTP/1.1 404 Not Found\nX: y\n\nsome body"), Progress::More);
        assert_eq!(r.status(), Some(404));
        assert_eq!(r.finish(), Progress::Complete);
        assert_eq!(r.body_len(), 9);
    }

    #[test]
    fn interim_answers_are_skipped_and_short_bodies_are_bad() {
        let mut r = Response::default();
        let two = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\ncontent-LENGTH:  0\r\n\r\n";
        assert_eq!(r.feed(two), Progress::Complete);
        assert_eq!(r.status(), Some(204));
        let mut r = Response::default();
        assert_eq!(
            r.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
            Progress::More
        );
        assert_eq!(r.finish(), Progress::Bad);
    }

    #[test]
    fn garbage_is_bad() {
        for bad in [&b"SSH-2.0-OpenSSH\r\n"[..], b"HTTP/1.1 2x0 OK\r\n", b"HTTP/1.1x200"] {
            assert_eq!(Response::default().feed(bad), Progress::Bad, "{bad:?}");
        }
        let mut r = Response::default();
        assert_eq!(r.feed(b"HTTP/1.1 20"), Progress::More);
        assert_eq!(r.status(), None);
        assert_eq!(r.finish(), Progress::Bad);
        let mut r = Response::default();
        assert_eq!(r.feed(b"HTTP/1.1 200 OK\r\n\rX"), Progress::Bad);
    }

    #[test]
    fn the_request_is_http_1_1_with_a_host() {
        let r = String::from_utf8(request("203.0.113.10", "/")).unwrap();
        assert!(r.starts_with("GET / HTTP/1.1\r\nHost: 203.0.113.10\r\n"));
        assert!(r.ends_with("Connection: close\r\n\r\n"));
    }
}
