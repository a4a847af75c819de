//! The API's bearer token: where it comes from, and the check on every
//! request but `GET /api/v1/health`.
//!
//! Sources, first found wins: `[mgmt] token_file`, the environment variable
//! `MOAT_API_TOKEN`, else a random token generated at start-up into
//! `<state_dir>/api.token` (mode 0600, readable by the node's user only) —
//! but only when the API listens on a loopback address: an API reachable
//! from the network never runs with a token nobody configured. Tokens are
//! at least 16 characters (surrounding whitespace is ignored, so a file
//! written by `echo` works). Comparison is in constant time (`subtle`).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use axum::http::{header, HeaderMap};
use subtle::ConstantTimeEq;

use crate::config::Config;

/// Environment variable holding the token.
pub const TOKEN_ENV: &str = "MOAT_API_TOKEN";

/// File of the generated token, under `[node] state_dir`.
pub const GENERATED_FILE: &str = "api.token";

/// The token requests must carry.
#[derive(Clone)]
pub struct Token(Vec<u8>);

impl core::fmt::Debug for Token {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// Where the token came from, for the start-up line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    File(PathBuf),
    Env,
    Generated(PathBuf),
}

impl core::fmt::Display for TokenSource {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TokenSource::File(p) => write!(f, "token from {}", p.display()),
            TokenSource::Env => write!(f, "token from ${TOKEN_ENV}"),
            TokenSource::Generated(p) => write!(f, "generated token in {}", p.display()),
        }
    }
}

fn checked(t: &str, from: &str) -> anyhow::Result<Token> {
    // The rule lives in config, where `moat check` applies it too.
    let t = crate::config::api_token(t).map_err(|r| anyhow::anyhow!("{from}: {r}"))?;
    Ok(Token(t.as_bytes().to_vec()))
}

/// The token of `cfg` (see the module doc); `listen`: the address the API
/// will listen on. `env`: the value of [`TOKEN_ENV`], if set.
pub fn load(cfg: &Config, listen: SocketAddr, env: Option<String>) -> anyhow::Result<(Token, TokenSource)> {
    if let Some(p) = cfg.token_file() {
        let t = crate::config::read_token_file(&p).map_err(anyhow::Error::msg)?;
        return Ok((
            checked(&t, &format!("mgmt.token_file {}", p.display()))?,
            TokenSource::File(p),
        ));
    }
    if let Some(t) = env {
        return Ok((checked(&t, &format!("${TOKEN_ENV}"))?, TokenSource::Env));
    }
    anyhow::ensure!(
        listen.ip().is_loopback(),
        "mgmt.listen {listen} is not a loopback address: set mgmt.token_file or ${TOKEN_ENV} \
         (the API refuses to be reachable from the network without a configured token), \
         or mgmt.enabled = false"
    );
    let p = cfg.state_dir().join(GENERATED_FILE);
    let bytes: [u8; 24] = rand::random();
    let t = hex::encode(bytes);
    crate::persist::write_atomic(&p, format!("{t}\n").as_bytes(), 0o600)
        .with_context(|| format!("writing the generated API token to {}", p.display()))?;
    Ok((Token(t.into_bytes()), TokenSource::Generated(p)))
}

impl Token {
    #[cfg(test)]
    pub fn for_test(t: &str) -> Token {
        Token(t.as_bytes().to_vec())
    }

    /// Does `headers` carry this token as `Authorization: Bearer <token>`?
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Some((scheme, given)) = v.trim().split_once(' ') else {
            return false;
        };
        // The scheme is case-insensitive (RFC 7235 §2.1).
        scheme.eq_ignore_ascii_case("bearer") && bool::from(given.trim().as_bytes().ct_eq(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn only_the_exact_bearer_token_is_admitted() {
        let t = Token::for_test("0123456789abcdef");
        assert!(t.admits(&with("Bearer 0123456789abcdef")));
        assert!(t.admits(&with("bearer 0123456789abcdef")));
        assert!(!t.admits(&with("Bearer 0123456789abcdeF")));
        assert!(!t.admits(&with("Bearer 0123456789abcde")));
        assert!(!t.admits(&with("Basic 0123456789abcdef")));
        assert!(!t.admits(&with("0123456789abcdef")));
        assert!(!t.admits(&HeaderMap::new()));
    }

    #[test]
    fn sources_in_order_and_no_generated_token_off_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::from_toml_str(crate::cmd::demo::DEMO_CONFIG, "demo", std::path::Path::new(".")).unwrap();
        cfg.node.state_dir = dir.path().to_path_buf();
        let lo: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:9180".parse().unwrap();
        let (_, src) = load(&cfg, lo, None).unwrap();
        assert_eq!(src, TokenSource::Generated(dir.path().join(GENERATED_FILE)));
        let written = std::fs::read_to_string(dir.path().join(GENERATED_FILE)).unwrap();
        assert_eq!(written.trim().len(), 48);
        let e = load(&cfg, any, None).unwrap_err().to_string();
        assert!(e.contains("not a loopback address"), "{e}");
        let (t, src) = load(&cfg, any, Some("from-the-environment".into())).unwrap();
        assert_eq!(src, TokenSource::Env);
        assert!(t.admits(&with("Bearer from-the-environment")));
        assert!(load(&cfg, any, Some("short".into()))
            .unwrap_err()
            .to_string()
            .contains("at least 16"));
        let f = dir.path().join("tok");
        std::fs::write(&f, "file-token-0123456789\n").unwrap();
        cfg.mgmt.token_file = Some(f.clone());
        let (t, src) = load(&cfg, any, Some("from-the-environment".into())).unwrap();
        assert_eq!(src, TokenSource::File(f));
        assert!(t.admits(&with("Bearer file-token-0123456789")));
    }
}
