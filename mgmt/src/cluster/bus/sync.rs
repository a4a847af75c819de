//! The configuration overlay through the key-value bucket (see the parent
//! module for the rules): one session per connection — write the pending
//! keys, read the bucket, offer the keys it lacks, then watch it and write
//! each new local change — started again after every reconnection.

use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::kv::{Entry, Operation, Store, UpdateErrorKind};
use async_nats::jetstream::stream;
use futures_util::{StreamExt, TryStreamExt};

use super::BusState;
use crate::control::shared::{self, SharedKey};

/// How long one bucket request may take before the session is started
/// again.
const REQUEST: Duration = Duration::from_secs(2);

/// Values kept per key (the bucket is a current state, not a log).
const HISTORY: i64 = 1;

/// Sessions until `stop` (the caller's). `connects` changes on every
/// (re)connection; `ready` hears after the first read of the bucket.
pub(super) async fn run(
    st: &BusState,
    client: &async_nats::Client,
    mut connects: tokio::sync::watch::Receiver<u64>,
    mut ready: Option<std::sync::mpsc::Sender<()>>,
) {
    let mut js = async_nats::jetstream::new(client.clone());
    js.set_timeout(REQUEST);
    loop {
        if !st.stats.connected.load(Relaxed) {
            let _ = tokio::time::timeout(Duration::from_millis(200), connects.changed()).await;
            continue;
        }
        connects.borrow_and_update();
        match session(st, &js, &mut connects, &mut ready).await {
            Ok(()) => {}
            Err(e) => {
                st.stats.synced.store(false, Relaxed);
                st.note_error(format!("configuration bucket: {e:#}"));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// The bucket, created when missing (the first node of a cluster).
///
/// Created as its stream (what `create_key_value` would make: `KV_NAME`
/// over `$KV.NAME.>`, rollups allowed, deletes denied, direct gets, new
/// messages refused when full) because `create_key_value` first reads the
/// account's JetStream info, whose 2.9 form (Debian bookworm's
/// nats-server) this client no longer parses.
async fn store(st: &BusState, js: &async_nats::jetstream::Context) -> anyhow::Result<Store> {
    let name = &st.cfg.name;
    if let Ok(s) = js.get_key_value(name.clone()).await {
        return Ok(s);
    }
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{name}"),
        description: Some("Moat: the REST API's configuration overlay".into()),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: HISTORY,
        max_message_size: i32::try_from(shared::MAX_VALUE).unwrap_or(i32::MAX),
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    })
    .await
    .with_context(|| format!("creating bucket {name}"))?;
    js.get_key_value(name.clone())
        .await
        .with_context(|| format!("opening bucket {name}"))
}

/// One connection's session; returns `Ok` when the connection changed
/// (the caller starts again), an error when the bucket failed.
async fn session(
    st: &BusState,
    js: &async_nats::jetstream::Context,
    connects: &mut tokio::sync::watch::Receiver<u64>,
    ready: &mut Option<std::sync::mpsc::Sender<()>>,
) -> anyhow::Result<()> {
    let kv = store(st, js).await?;
    // 1. What changed here while away wins for its keys.
    push(st, &kv).await?;
    // 2. The bucket wins for every other key.
    let keys: Vec<String> = kv.keys().await?.try_collect().await.context("listing keys")?;
    let mut max = 0;
    let mut present = HashSet::new();
    for k in keys {
        if let Some(e) = kv.entry(k.clone()).await.context("reading a key")? {
            max = max.max(e.revision);
            apply(st, &e);
            present.insert(k);
        }
    }
    // 3. This node's overlay keys the bucket lacks: offered, create-only
    // (a node that created one meanwhile wins).
    for key in st.control.shared_keys() {
        if !present.contains(&key.to_kv()) {
            if let Some(e) = st.pending.offer(key) {
                st.note_error(e);
            }
        }
    }
    push(st, &kv).await?;
    st.stats.synced.store(true, Relaxed);
    if let Some(r) = ready.take() {
        let _ = r.send(());
    }
    // 4. Follow the bucket; write each local change.
    let mut watch = kv.watch_all_from_revision(max + 1).await.context("watching")?;
    loop {
        tokio::select! {
            e = watch.next() => match e {
                Some(Ok(e)) => apply(st, &e),
                Some(Err(e)) => return Err(e).context("watching"),
                None => anyhow::bail!("the watch ended"),
            },
            () = st.wake.notified() => push(st, &kv).await?,
            r = connects.changed() => {
                r.context("bus closed")?;
                return Ok(());
            }
        }
    }
}

/// Writes every pending key: compare-and-set on the revision the change's
/// `If-Match` was judged against (0: the key must not exist yet), else a
/// plain put. A lost compare-and-set applies the bucket's value here (the
/// bucket wins), unless the bucket already holds exactly this node's value:
/// an earlier attempt was stored but its acknowledgement was lost (the
/// server restarting), so the key is written, not in conflict. A key stays
/// pending until written; a failure stops.
async fn push(st: &BusState, kv: &Store) -> anyhow::Result<()> {
    for (key, c) in st.pending.keys() {
        let k = key.to_kv();
        let value = shared::encode(&st.control.shared_value(&key));
        let res = match c.expect {
            Some(expect) => kv.update(&k, value.clone().into(), expect).await.map_err(|e| {
                let lost = e.kind() == UpdateErrorKind::WrongLastRevision;
                (lost, anyhow::Error::new(e))
            }),
            None => kv
                .put(&k, value.clone().into())
                .await
                .map_err(|e| (false, anyhow::Error::new(e))),
        };
        let stored = match res {
            Ok(rev) => {
                st.stats.config_revision.fetch_max(rev, Relaxed);
                st.stats.config_pushed.fetch_add(1, Relaxed);
                st.pending.written(&key, c.n, rev)
            }
            Err((true, _)) => {
                let current = kv.entry(k.clone()).await.context("reading a key")?;
                match current {
                    Some(e) if e.operation == Operation::Put && e.value.as_ref() == value.as_slice() => {
                        st.stats.config_revision.fetch_max(e.revision, Relaxed);
                        st.stats.config_pushed.fetch_add(1, Relaxed);
                        st.pending.written(&key, c.n, e.revision)
                    }
                    current => {
                        st.stats.config_conflicts.fetch_add(1, Relaxed);
                        tracing::warn!(
                            "cluster bus: {k} changed elsewhere first: this node's change gives way to the bucket's"
                        );
                        let stored = st.pending.lost(&key, c.n);
                        if let Some(e) = current {
                            apply(st, &e);
                        }
                        stored
                    }
                }
            }
            Err((false, e)) => return Err(e).with_context(|| format!("writing {k}")),
        };
        if let Some(e) = stored {
            st.note_error(e);
        }
    }
    Ok(())
}

/// An entry of the bucket, applied unless already seen, unknown, or
/// changed here and not yet written (the local change goes out next).
fn apply(st: &BusState, e: &Entry) {
    let Some(key) = SharedKey::from_kv(&e.key) else {
        return;
    };
    if !st.pending.take(&key, &e.key, e.revision) {
        return;
    }
    st.stats.config_revision.fetch_max(e.revision, Relaxed);
    let value = match e.operation {
        Operation::Put => match shared::decode(&key, &e.value) {
            Ok(v) => Some(v),
            Err(err) => {
                st.stats.config_refused.fetch_add(1, Relaxed);
                tracing::warn!("cluster bus: {} revision {}: {err}; ignored", e.key, e.revision);
                return;
            }
        },
        Operation::Delete | Operation::Purge => None,
    };
    match st.control.apply_shared(&key, value) {
        Ok(true) => {
            st.stats.config_applied.fetch_add(1, Relaxed);
            tracing::info!("cluster bus: applied {} (revision {})", e.key, e.revision);
        }
        Ok(false) => {}
        Err(err) => {
            st.stats.config_refused.fetch_add(1, Relaxed);
            tracing::warn!(
                "cluster bus: {} revision {} does not fit this node: {err}; this node keeps its own",
                e.key,
                e.revision
            );
        }
    }
}
