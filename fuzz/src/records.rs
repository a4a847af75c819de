//! The input format of the stateful `classify` target: a fuzz input is a
//! sequence of records, each one frame and the time that passed before it,
//! so that state (flows, verified sources, token buckets, cookie slots)
//! carries from packet to packet.
//!
//! ```text
//! record = len:u16be  dt:u16be  frame[len]
//! dt     = scale:2 bits | count:14 bits     elapsed = count × SCALES[scale]
//! ```
//!
//! A last record shorter than its length takes what remains; at most
//! [`MAX_RECORDS`] records are read, so one input costs a bounded time.
//! The time scales reach from microseconds (a burst) to hours (past every
//! timeout: 64 s cookie slots, 120 s flow idle, 300 s verified TTL), so the
//! fuzzer can step over each expiry with a two-byte mutation.

use classifier::time::Nanos;

/// Most records read from one input.
pub const MAX_RECORDS: usize = 64;

/// Nanoseconds per `count` unit, by the top two bits of `dt`: 1 µs, 1 ms,
/// 100 ms, 1 s (so at most 16383 s, about 4.5 hours, per record).
pub const SCALES: [Nanos; 4] = [1_000, 1_000_000, 100_000_000, 1_000_000_000];

const COUNT_MAX: u16 = (1 << 14) - 1;

/// Decodes a `dt` field into nanoseconds.
pub fn decode_dt(dt: u16) -> Nanos {
    SCALES[usize::from(dt >> 14)] * Nanos::from(dt & COUNT_MAX)
}

/// Encodes `ns` with the finest scale that holds it (rounded down; capped at
/// the largest step), for seed generation.
pub fn encode_dt(ns: Nanos) -> u16 {
    for (i, unit) in SCALES.iter().enumerate() {
        let count = ns / unit;
        if count <= Nanos::from(COUNT_MAX) {
            return (i as u16) << 14 | count as u16;
        }
    }
    3 << 14 | COUNT_MAX
}

/// Appends one record to `out` (seed generation). Frames longer than 65535
/// bytes cannot be written and are cut.
pub fn push_record(out: &mut Vec<u8>, dt: Nanos, frame: &[u8]) {
    let frame = &frame[..frame.len().min(usize::from(u16::MAX))];
    out.extend_from_slice(&(frame.len() as u16).to_be_bytes());
    out.extend_from_slice(&encode_dt(dt).to_be_bytes());
    out.extend_from_slice(frame);
}

/// Iterator over the `(elapsed ns, frame)` records of an input.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    rest: &'a [u8],
    left: usize,
}

/// The records of `data`.
pub fn records(data: &[u8]) -> Records<'_> {
    Records {
        rest: data,
        left: MAX_RECORDS,
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = (Nanos, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 || self.rest.len() < 4 {
            return None;
        }
        self.left -= 1;
        let len = usize::from(u16::from_be_bytes([self.rest[0], self.rest[1]]));
        let dt = decode_dt(u16::from_be_bytes([self.rest[2], self.rest[3]]));
        let body = &self.rest[4..];
        let (frame, rest) = body.split_at(len.min(body.len()));
        self.rest = rest;
        Some((dt, frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let mut b = Vec::new();
        push_record(&mut b, 10_000, b"abc");
        push_record(&mut b, 65 * 1_000_000_000, b"");
        push_record(&mut b, 5_000_000, b"xyz");
        b.truncate(b.len() - 1);
        let got: Vec<_> = records(&b).collect();
        assert_eq!(
            got,
            [
                (10_000, &b"abc"[..]),
                (65_000_000_000, &b""[..]),
                (5_000_000, &b"xy"[..])
            ]
        );
    }

    #[test]
    fn dt_scales() {
        assert_eq!(decode_dt(encode_dt(16_383_000)), 16_383_000);
        // 16.384 ms no longer fits in µs: milliseconds, rounded down.
        assert_eq!(decode_dt(encode_dt(16_384_999)), 16_000_000);
        assert_eq!(decode_dt(encode_dt(u64::MAX)), 16_383 * 1_000_000_000);
        assert_eq!(decode_dt(0xffff), 16_383 * 1_000_000_000);
    }

    #[test]
    fn at_most_max_records() {
        let b = vec![0u8; 4 * (MAX_RECORDS + 10)];
        assert_eq!(records(&b).count(), MAX_RECORDS);
    }
}
