//! Runs `classify` over one generated profile in a loop, for instruction
//! counting under callgrind (repeatable where wall-clock figures are not):
//!
//! ```sh
//! cargo build --release -p benches --example classify_loop
//! valgrind --tool=callgrind target/release/examples/classify_loop syn-flood 100000
//! ```
//!
//! Prints the verdict mix so the run can be checked. The frames are built
//! before the loop; divide the `classify` inclusive cost by the count.

use std::hint::black_box;

use benches::{frames, policy};
use classifier::classify::classify;
use classifier::state::{StateConfig, WorkerState};
use classifier::verdict::Verdict;
use dataplane::gen::Profile;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "syn-flood".into());
    let count: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let profile = Profile::from_name(&name).unwrap_or_else(|| panic!("unknown profile {name}"));
    let pol = policy();
    let fr = frames(profile, 4096, 3);
    let now = fr.last().map_or(0, |f| f.0);
    let mut st = WorkerState::new(&StateConfig::default(), &pol, 1);
    let mut reply = [0u8; 128];
    let (mut pass, mut replies, mut drops) = (0u64, 0u64, 0u64);
    for i in 0..count {
        let f = &fr[i % fr.len()].1;
        match black_box(classify(&mut st, &pol, now, f, &mut reply)) {
            Verdict::Pass(_) => pass += 1,
            Verdict::Reply { .. } | Verdict::Answer(_) | Verdict::ResetBoth { .. } => replies += 1,
            Verdict::Drop(_) => drops += 1,
        }
    }
    println!("{name}: {count} packets: {pass} pass, {replies} replies, {drops} drops");
}
