//! The capture-file backend: the outside port receives the frames of a pcap
//! or pcapng file (at the capture's pace: the worker's clock is each
//! frame's timestamp), and each port's transmitted frames are written to a
//! pcap file of their own (replies on the outside one, GRE toward the
//! origins on the inside one). One worker only: a capture is one ordered
//! stream.
//!
//! Reading a record allocates (pcap-file hands out owned records): this
//! backend replays captures for tests and offline runs; it is not a
//! measuring backend.

use std::path::PathBuf;

use classifier::time::Nanos;

use super::{Burst, Frame, HeapFrame, Pool, PortId, Queues};
use crate::pcap::{create_output, open_input, PcapError, PcapReader, PcapWriter};

/// Files of the pcap backend.
#[derive(Debug, Clone, Default)]
pub struct PcapPaths {
    /// Capture read as the outside port's RX.
    pub rx: Option<PathBuf>,
    /// Where each port's TX goes (outside, inside); `None`: counted only.
    pub tx: [Option<PathBuf>; 2],
}

/// The single worker's queues on capture files.
#[derive(Debug)]
pub struct PcapQueues {
    pool: Pool,
    reader: Option<PcapReader>,
    writers: [Option<PcapWriter>; 2],
    /// Timestamp of the last frame read, for frames the worker originates.
    last_ts: Nanos,
    /// Records longer than a frame buffer, skipped.
    pub oversized: u64,
    /// The first read or write error, reported at close.
    error: Option<String>,
}

impl PcapQueues {
    /// Opens the files (errors name them).
    pub fn open(paths: &PcapPaths, pool: usize) -> Result<Self, PcapError> {
        let reader = paths.rx.as_deref().map(open_input).transpose()?;
        let w0 = paths.tx[0].as_deref().map(create_output).transpose()?;
        let w1 = paths.tx[1].as_deref().map(create_output).transpose()?;
        Ok(PcapQueues {
            pool: Pool::new(pool),
            reader,
            writers: [w0, w1],
            last_ts: 0,
            oversized: 0,
            error: None,
        })
    }
}

impl Queues for PcapQueues {
    type Frame = HeapFrame;

    fn rx_burst(&mut self, port: PortId, out: &mut Burst<HeapFrame>, max: usize) -> usize {
        if port != PortId::Outside {
            return 0;
        }
        let mut got = 0;
        while !out.is_full() && got < max {
            let Some(r) = self.reader.as_mut() else { break };
            let rec = match r.next_frame() {
                Ok(Some(rec)) => rec,
                Ok(None) => {
                    self.reader = None;
                    break;
                }
                Err(e) => {
                    self.error.get_or_insert_with(|| e.to_string());
                    self.reader = None;
                    break;
                }
            };
            let Some(mut f) = self.pool.alloc() else { break };
            if !f.fill(&rec.data) {
                self.oversized += 1;
                self.pool.free(f);
                continue;
            }
            self.last_ts = rec.ts;
            f.set_timestamp(Some(rec.ts));
            out.push(f);
            got += 1;
        }
        got
    }

    fn tx_burst(&mut self, port: PortId, frames: &mut Burst<HeapFrame>) -> usize {
        let mut sent = 0;
        for f in frames.drain(..) {
            if let Some(w) = &mut self.writers[port.index()] {
                if let Err(e) = w.write(f.timestamp().unwrap_or(self.last_ts), f.data()) {
                    self.error.get_or_insert_with(|| e.to_string());
                }
            }
            self.pool.free(f);
            sent += 1;
        }
        sent
    }

    fn free(&mut self, f: HeapFrame) {
        self.pool.free(f);
    }

    fn alloc(&mut self) -> Option<HeapFrame> {
        self.pool.alloc()
    }

    fn close(&mut self) -> Result<(), String> {
        for w in self.writers.iter_mut() {
            if let Some(w) = w.take() {
                if let Err(e) = w.finish() {
                    self.error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn rx_done(&self, port: PortId) -> bool {
        port == PortId::Inside || self.reader.is_none()
    }
}
