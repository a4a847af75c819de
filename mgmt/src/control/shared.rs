//! The runtime changes as the cluster shares them: one entry per object
//! (the rule set; each service by name), so that two nodes changing
//! different objects at once never overwrite each other.
//!
//! - [`SharedKey`]: `rules`, or `service.NAME` with every `.` of the name
//!   written `=` (a key-value key's tokens are separated by dots; `=` is a
//!   key character no service name has).
//! - Values are JSON: the rule set (`null`: none, the file's), or a
//!   [`ServiceChange`] (`service: null` is a deletion, kept as a tombstone
//!   so that a node that had the service deletes it too).
//! - [`Sharer`]: what [`super::Control`] tells after each change made
//!   through it (REST): which key changed and whether the request carried
//!   `If-Match`. The sharer reads the value itself when it sends it, so a
//!   burst of changes to one key sends its last state once.

use super::changes::{Rules, ServiceChange};

/// Largest value accepted from the bus: a service with every list full is
/// far below this.
pub const MAX_VALUE: usize = 256 * 1024;

/// One shared object of the overlay.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SharedKey {
    Rules,
    Service(String),
}

const SERVICE_PREFIX: &str = "service.";

impl SharedKey {
    /// The key-value key.
    pub fn to_kv(&self) -> String {
        match self {
            SharedKey::Rules => "rules".into(),
            SharedKey::Service(n) => format!("{SERVICE_PREFIX}{}", n.replace('.', "=")),
        }
    }

    /// The object a key-value key names; `None` for keys this version does
    /// not know (ignored, so a newer node's keys do not break older ones).
    pub fn from_kv(k: &str) -> Option<SharedKey> {
        if k == "rules" {
            return Some(SharedKey::Rules);
        }
        let n = k.strip_prefix(SERVICE_PREFIX)?.replace('=', ".");
        (!n.is_empty()).then_some(SharedKey::Service(n))
    }
}

/// Told of every change made through [`super::Control`]'s REST methods.
pub trait Sharer: Send + Sync + std::fmt::Debug {
    /// `key` changed locally; `if_match`: the request was conditional (the
    /// sharer then writes with compare-and-set).
    fn changed(&self, key: SharedKey, if_match: bool);
}

/// A shared value as read from the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedValue {
    Rules(Option<Rules>),
    Service(Box<ServiceChange>),
}

/// Why a value from the bus was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SharedError {
    #[error("{0} bytes, over the {MAX_VALUE}-byte limit")]
    TooBig(usize),
    #[error("not a value of this key: {0}")]
    Json(String),
    #[error("the value names service \"{found}\", the key \"{key}\"")]
    WrongName { key: String, found: String },
}

/// Decodes the value of `key` (bounded; refuses unknown fields).
pub fn decode(key: &SharedKey, bytes: &[u8]) -> Result<SharedValue, SharedError> {
    if bytes.len() > MAX_VALUE {
        return Err(SharedError::TooBig(bytes.len()));
    }
    let json = |e: serde_json::Error| SharedError::Json(e.to_string());
    match key {
        SharedKey::Rules => serde_json::from_slice(bytes).map(SharedValue::Rules).map_err(json),
        SharedKey::Service(name) => {
            let c: ServiceChange = serde_json::from_slice(bytes).map_err(json)?;
            let body = c.service.as_ref().map(|s| s.name.as_str());
            if c.name != *name || body.is_some_and(|b| b != name) {
                return Err(SharedError::WrongName {
                    key: name.clone(),
                    found: body.unwrap_or(&c.name).to_string(),
                });
            }
            Ok(SharedValue::Service(Box::new(c)))
        }
    }
}

/// Encodes a value (the inverse of [`decode`]).
pub fn encode(v: &SharedValue) -> Vec<u8> {
    match v {
        SharedValue::Rules(r) => serde_json::to_vec(r),
        SharedValue::Service(c) => serde_json::to_vec(c),
    }
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_unknown_keys_are_none() {
        for k in [
            SharedKey::Rules,
            SharedKey::Service("web".into()),
            SharedKey::Service("api.v2-x_y".into()),
        ] {
            assert_eq!(SharedKey::from_kv(&k.to_kv()), Some(k.clone()));
        }
        assert_eq!(SharedKey::Service("a.b".into()).to_kv(), "service.a=b");
        assert_eq!(SharedKey::from_kv("service."), None);
        assert_eq!(SharedKey::from_kv("origin.x"), None);
    }

    #[test]
    fn values_are_checked() {
        let web = SharedKey::Service("web".into());
        let tomb = SharedValue::Service(Box::new(ServiceChange {
            name: "web".into(),
            service: None,
        }));
        assert_eq!(decode(&web, &encode(&tomb)).unwrap(), tomb);
        assert!(matches!(
            decode(&SharedKey::Service("api".into()), &encode(&tomb)),
            Err(SharedError::WrongName { .. })
        ));
        assert_eq!(decode(&SharedKey::Rules, b"null").unwrap(), SharedValue::Rules(None));
        assert!(matches!(
            decode(&SharedKey::Rules, b"{\"acl\":1}"),
            Err(SharedError::Json(_))
        ));
        assert!(matches!(decode(&web, b"\xff\x00"), Err(SharedError::Json(_))));
        let big = vec![b' '; MAX_VALUE + 1];
        assert_eq!(decode(&web, &big), Err(SharedError::TooBig(MAX_VALUE + 1)));
    }
}
