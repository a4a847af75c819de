#!/usr/bin/env bash
# The workspace's `rust-version` must be at least the highest `rust-version`
# of the locked dependencies (dev and build dependencies included: `cargo
# test` builds them): a toolchain older than that cannot build the lock
# file, whatever Cargo.toml says. Recomputed from `cargo metadata` after
# every dependency change; exits 1 naming the package that needs more.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo metadata --format-version 1 --locked | python3 -c '
import json, sys

def ver(v):
    parts = [int(x) for x in v.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))

m = json.load(sys.stdin)
members = set(m["workspace_members"])
deps = [(ver(p["rust_version"]), p["name"], p["version"], p["rust_version"])
        for p in m["packages"] if p["id"] not in members and p.get("rust_version")]
need = max(deps)
print("highest rust-version among %d locked dependencies: %s (%s %s)" % (len(deps), need[3], need[1], need[2]))
bad = 0
for p in m["packages"]:
    if p["id"] not in members:
        continue
    have = p.get("rust_version")
    if have is None or ver(have) < need[0]:
        print("%s declares rust-version %s, below %s (%s %s needs it)" % (p["name"], have, need[3], need[1], need[2]))
        bad = 1
sys.exit(bad)
'
