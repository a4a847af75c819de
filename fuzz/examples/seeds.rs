//! Writes the seeds of `moat_fuzz::seeds` into `<corpus>/classify/` and
//! `<corpus>/pcap/` (default corpus directory: `corpus` beside this crate).
//! Usage: `cargo run --example seeds [-- <corpus dir>]`, from `fuzz/`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    let dir = root.join("classify");
    std::fs::create_dir_all(&dir)?;
    let seeds = moat_fuzz::seeds::classify_seeds();
    for (name, bytes) in &seeds {
        std::fs::write(dir.join(name), bytes)?;
    }
    println!("classify: {} seeds from dataplane::gen", seeds.len());
    let dir = root.join("pcap");
    std::fs::create_dir_all(&dir)?;
    moat_fuzz::seeds::write_pcap_seed(&dir.join("gen-writer"))?;
    println!("pcap: 1 seed from PcapWriter");
    Ok(())
}
