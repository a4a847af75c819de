//! Bans on the cluster bus (`NAME.bans`): every [`FLUSH`] the bans and
//! lifts made on this node ([`Blacklist::take_outgoing`]) go out, one JSON
//! message each (`{"from": ID, "change": ...}`, at most [`MAX_MESSAGE`]
//! bytes); another node's applies here with the time it had left when
//! sent ([`Blacklist::apply_peer`]) and is not sent again. Shared whenever
//! verified sources are (`[cluster] share_verified`). A node that joins
//! later hears only the bans made from then on; its own stored bans come
//! back from its state folder.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::{BusState, FLUSH};
use crate::blacklist::{now_ms, Blacklist, Shared};

/// Largest message accepted.
pub const MAX_MESSAGE: usize = 4096;

#[derive(Debug, Serialize, Deserialize)]
struct Message {
    from: u64,
    change: Shared,
}

/// Encodes one change of node `from`.
fn encode(from: u64, change: Shared) -> Vec<u8> {
    serde_json::to_vec(&Message { from, change }).unwrap_or_default()
}

/// A message from another node: its change, or `None` for this node's own
/// (and `Err` for garbage).
fn decode(me: u64, payload: &[u8]) -> Result<Option<Shared>, String> {
    if payload.len() > MAX_MESSAGE {
        return Err(format!("{} bytes, over {MAX_MESSAGE}", payload.len()));
    }
    let m: Message = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    Ok((m.from != me).then_some(m.change))
}

/// Publishes this node's changes and applies the others' until the
/// connection ends.
pub(super) async fn run(st: &BusState, bl: &Arc<Blacklist>, client: &async_nats::Client) {
    let subject = format!("{}.bans", st.cfg.name);
    let mut tick = tokio::time::interval(FLUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut sub = match client.subscribe(subject.clone()).await {
            Ok(s) => s,
            Err(e) => {
                st.note_error(format!("subscribing to {subject}: {e}"));
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            tokio::select! {
                m = sub.next() => match m {
                    Some(m) => match decode(st.id, &m.payload) {
                        Ok(Some(change)) => {
                            st.stats.bans_in.fetch_add(1, Relaxed);
                            bl.apply_peer(change, now_ms());
                        }
                        Ok(None) => {}
                        Err(e) => {
                            st.stats.bad_messages.fetch_add(1, Relaxed);
                            st.note_error(format!("refused a ban message: {e}"));
                        }
                    },
                    None => break,
                },
                _ = tick.tick() => {
                    for change in bl.take_outgoing() {
                        if !st.stats.connected.load(Relaxed) {
                            st.stats.bans_dropped.fetch_add(1, Relaxed);
                            continue;
                        }
                        match client.publish(subject.clone(), encode(st.id, change).into()).await {
                            Ok(()) => st.stats.bans_out.fetch_add(1, Relaxed),
                            Err(_) => st.stats.bans_dropped.fetch_add(1, Relaxed),
                        };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_skip_our_own_and_refuse_garbage() {
        let change = Shared::Unban {
            source: "198.51.100.1".parse().unwrap(),
        };
        let m = encode(7, change.clone());
        assert_eq!(decode(8, &m), Ok(Some(change)));
        assert_eq!(decode(7, &m), Ok(None));
        assert!(decode(8, b"{\"from\": 1}").is_err());
        assert!(decode(8, &vec![b' '; MAX_MESSAGE + 1]).is_err());
    }
}
