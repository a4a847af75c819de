//! Generates the DPDK bindings (bindgen, against the system's libdpdk found
//! with pkg-config) and compiles the C wrappers for DPDK's static-inline
//! functions (`wrap_static_fns`) together with `src/shim.c`.
//!
//! Workarounds, each for a reason:
//! - `-include rte_config.h` and the other pkg-config cflags go to both
//!   clang (bindgen) and cc: DPDK headers do not include their config.
//! - An allowlist: the full DPDK API is thousands of items, some with
//!   layouts bindgen cannot express (packed inside aligned); Moat needs a
//!   few dozen.
//! - `rte_errno` and `LCORE_ID_ANY` are macros over TLS / `UINT32_MAX`:
//!   bindgen sees neither, so `src/shim.c` exports them as functions.

use std::env;
use std::path::PathBuf;

fn main() {
    if env::var_os("CARGO_FEATURE_LINK").is_none() {
        return;
    }
    println!("cargo:rerun-if-changed=src/bindings.h");
    println!("cargo:rerun-if-changed=src/shim.c");
    let lib = pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
        .unwrap_or_else(|e| panic!("libdpdk not found by pkg-config (apt-get install libdpdk-dev): {e}"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let cflags = cflags();
    let wrappers = out.join("static_fns");

    let bindings = bindgen::Builder::default()
        .header("src/bindings.h")
        .clang_args(&cflags)
        .clang_args(lib.include_paths.iter().map(|p| format!("-I{}", p.display())))
        .allowlist_function("rte_eal_(init|cleanup)")
        .allowlist_function("rte_eth_(dev_get_port_by_name|dev_info_get|dev_configure|dev_adjust_nb_rx_tx_desc|rx_queue_setup|tx_queue_setup|dev_start|dev_stop|dev_close|dev_socket_id|promiscuous_enable|macaddr_get|link_get_nowait|stats_get|rx_burst|tx_burst)")
        .allowlist_function("rte_pktmbuf_(pool_create|alloc|free|free_bulk|prepend|adj|headroom|tailroom)")
        .allowlist_function("rte_mempool_free")
        .allowlist_function("rte_mbuf_dyn_rx_timestamp_register")
        .allowlist_function("rte_(lcore_id|socket_id|thread_register|thread_unregister|strerror)")
        .allowlist_function("moat_.*")
        .allowlist_type("rte_mbuf")
        .allowlist_var("RTE_PKTMBUF_HEADROOM|RTE_MAX_ETHPORTS|RTE_ETH_NAME_MAX_LEN|SOCKET_ID_ANY")
        .allowlist_type("rte_eth_(conf|dev_info|stats|link|rxconf|txconf)")
        .allowlist_type("rte_eth_rx_mq_mode")
        .rustified_enum("rte_eth_rx_mq_mode")
        .derive_default(true)
        .wrap_static_fns(true)
        .wrap_static_fns_path(&wrappers)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen on src/bindings.h");
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("writing bindings.rs");

    let mut build = cc::Build::new();
    build
        .file(wrappers.with_extension("c"))
        .file("src/shim.c")
        // The generated file includes "src/bindings.h", relative to here.
        .include(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"))
        .include("src")
        .includes(&lib.include_paths)
        // The generated wrappers call deprecated/experimental inlines too.
        .flag_if_supported("-Wno-deprecated-declarations");
    for f in &cflags {
        build.flag(f);
    }
    build.compile("moat_dpdk_shim");
}

/// The pkg-config cflags other than include paths (`-include rte_config.h`,
/// `-march=...`), split as the shell would (no quoting in DPDK's .pc).
fn cflags() -> Vec<String> {
    let out = std::process::Command::new("pkg-config")
        .args(["--cflags-only-other", "libdpdk"])
        .output()
        .expect("running pkg-config");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}
