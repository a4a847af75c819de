//! The configuration keys changed on this node and not yet in the bucket,
//! and the bucket revision last seen of each key.
//!
//! - A REST change marks its key pending, with the revision its `If-Match`
//!   was judged against (the key's last seen revision) when it carried one:
//!   the write is then a compare-and-set on that revision. Without
//!   `If-Match` it is a plain put (last writer wins).
//! - A pending key is cleared once written, unless changed again meanwhile
//!   (each change has a number).
//! - Entries read from the bucket are taken only if newer than the key's
//!   last seen revision and the key is not pending (the local change goes
//!   out next and wins).
//! - The pending keys, with their expected revisions, are kept in a file
//!   of the state directory ([`super::PENDING_FILE`]), so that a node
//!   restarted while the bus was away still writes them when it joins.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::control::SharedKey;

/// One pending key: the revision a compare-and-set expects (`None`: a
/// plain put) and the change's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Change {
    pub expect: Option<u64>,
    pub n: u64,
}

#[derive(Debug, Default)]
struct Inner {
    last: u64,
    keys: BTreeMap<SharedKey, Change>,
    /// Key-value key → last revision seen.
    seen: HashMap<String, u64>,
}

/// See the module doc.
#[derive(Debug, Default)]
pub(super) struct Pending {
    inner: Mutex<Inner>,
    file: Option<PathBuf>,
}

impl Pending {
    /// Pending keys kept in `file`, starting with those it holds (a file
    /// that cannot be read is logged and ignored: the changes themselves
    /// are in `changes.json`).
    pub fn with_file(file: PathBuf) -> Pending {
        let mut inner = Inner::default();
        match crate::persist::read_optional(&file) {
            Ok(Some(b)) => match serde_json::from_slice::<Vec<(String, Option<u64>)>>(&b) {
                Ok(keys) => {
                    for (k, expect) in keys {
                        if let Some(key) = SharedKey::from_kv(&k) {
                            inner.last += 1;
                            inner.keys.insert(key, Change { expect, n: inner.last });
                        }
                    }
                }
                Err(e) => tracing::warn!("{}: {e}; ignored", file.display()),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!("{}: {e}; ignored", file.display()),
        }
        Pending {
            inner: Mutex::new(inner),
            file: Some(file),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes the pending keys to the file; the error, if any.
    fn save(&self, g: &Inner) -> Option<String> {
        let path = self.file.as_ref()?;
        let keys: Vec<(String, Option<u64>)> = g.keys.iter().map(|(k, c)| (k.to_kv(), c.expect)).collect();
        let text = serde_json::to_vec(&keys).unwrap_or_default();
        crate::persist::write_atomic(path, &text, 0o600)
            .err()
            .map(|e| format!("{}: {e}", path.display()))
    }

    /// A REST change of `key` (conditional when `if_match`); replaces a
    /// pending change of it. Returns a storage error, if any.
    pub fn changed(&self, key: SharedKey, if_match: bool) -> Option<String> {
        let mut g = self.lock();
        let expect = if_match.then(|| g.seen.get(&key.to_kv()).copied().unwrap_or(0));
        g.last += 1;
        let n = g.last;
        g.keys.insert(key, Change { expect, n });
        self.save(&g)
    }

    /// Offers `key`, which the bucket lacks: create-only, unless a change
    /// of it is pending already.
    pub fn offer(&self, key: SharedKey) -> Option<String> {
        let mut g = self.lock();
        if g.keys.contains_key(&key) {
            return None;
        }
        g.last += 1;
        let n = g.last;
        g.keys.insert(key, Change { expect: Some(0), n });
        self.save(&g)
    }

    /// The keys to write now.
    pub fn keys(&self) -> Vec<(SharedKey, Change)> {
        self.lock().keys.iter().map(|(k, c)| (k.clone(), *c)).collect()
    }

    pub fn len(&self) -> usize {
        self.lock().keys.len()
    }

    /// `key` was written as change `n` at revision `rev`.
    pub fn written(&self, key: &SharedKey, n: u64, rev: u64) -> Option<String> {
        let mut g = self.lock();
        g.seen.insert(key.to_kv(), rev);
        self.clear(&mut g, key, n)
    }

    /// `key`'s change `n` lost a compare-and-set: dropped (the bucket's
    /// value comes next), the key's revision forgotten so that it is read.
    pub fn lost(&self, key: &SharedKey, n: u64) -> Option<String> {
        let mut g = self.lock();
        g.seen.remove(&key.to_kv());
        self.clear(&mut g, key, n)
    }

    fn clear(&self, g: &mut Inner, key: &SharedKey, n: u64) -> Option<String> {
        if g.keys.get(key).is_some_and(|c| c.n == n) {
            g.keys.remove(key);
            return self.save(g);
        }
        None
    }

    /// Whether the bucket's entry `k` (of `key`) at `rev` is to be applied:
    /// newer than seen and `key` not pending. Marks it seen if so.
    pub fn take(&self, key: &SharedKey, k: &str, rev: u64) -> bool {
        let mut g = self.lock();
        if g.seen.get(k).is_some_and(|&r| rev <= r) || g.keys.contains_key(key) {
            return false;
        }
        g.seen.insert(k.to_string(), rev);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditional_changes_expect_the_revision_seen_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pending.json");
        let p = Pending::with_file(file.clone());
        let web = SharedKey::Service("web".into());
        assert!(p.take(&web, "service.web", 7));
        assert!(!p.take(&web, "service.web", 7), "seen already");
        assert!(p.changed(web.clone(), true).is_none());
        assert!(!p.take(&web, "service.web", 8), "pending: the local change wins");
        assert!(p.changed(SharedKey::Rules, false).is_none());
        assert!(
            p.offer(SharedKey::Rules).is_none(),
            "a pending change keeps its own kind"
        );
        let keys = p.keys();
        assert_eq!(keys[0].0, SharedKey::Rules);
        assert_eq!(keys[0].1.expect, None);
        assert_eq!(keys[1].1.expect, Some(7));

        // Restarted: the same keys, the same expectations.
        let q = Pending::with_file(file.clone());
        let again: Vec<_> = q.keys().into_iter().map(|(k, c)| (k, c.expect)).collect();
        assert_eq!(again, vec![(SharedKey::Rules, None), (web.clone(), Some(7))]);

        // Written, but changed again meanwhile: stays pending.
        let n = keys[1].1.n;
        assert!(p.changed(web.clone(), false).is_none());
        assert!(p.written(&web, n, 9).is_none());
        assert_eq!(p.len(), 2);
        let n = p.keys()[1].1.n;
        assert!(p.written(&web, n, 10).is_none());
        assert!(!p.take(&web, "service.web", 10));
        assert!(p.take(&web, "service.web", 11));
        // A lost compare-and-set forgets the revision: the bucket's is read.
        let n = p.keys()[0].1.n;
        assert!(p.lost(&SharedKey::Rules, n).is_none());
        assert_eq!(p.len(), 0);
        assert!(Pending::with_file(file).keys().is_empty());
        // Offered keys are create-only.
        assert!(p.offer(SharedKey::Service("new".into())).is_none());
        assert_eq!(p.keys()[0].1.expect, Some(0));
    }
}
