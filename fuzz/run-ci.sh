#!/usr/bin/env bash
# Short fuzzing pass for CI: every cargo-fuzz target of fuzz/ for N seconds
# each (default 20), from freshly generated seed corpora. Fails (exit 1) if
# any target crashes, hangs (-timeout), or runs out of memory; the inputs
# that did it are in fuzz/artifacts/<target>/, and the end of the log names
# them. Runs on the stable toolchain: `--sanitizer none` needs no nightly
# (the fuzzed crates forbid unsafe code, so ASan would add cost, not bugs).
#
# Usage: fuzz/run-ci.sh [SECONDS_PER_TARGET]   (from anywhere)
# Needs: cargo, python3, a C++ compiler (libfuzzer-sys builds libFuzzer).
set -euo pipefail

secs="${1:-20}"
case "$secs" in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS_PER_TARGET]" >&2
	exit 2
	;;
esac
cd "$(dirname "$0")"

if ! cargo fuzz --version >/dev/null 2>&1; then
	echo "== installing cargo-fuzz"
	cargo install --locked cargo-fuzz
fi
echo "== $(cargo fuzz --version)"

echo "== seed corpora"
python3 gen_corpus.py

echo "== building all targets"
cargo fuzz build --sanitizer none

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
failed=()
summary=()
for t in $(cargo fuzz list); do
	echo "== $t: ${secs}s"
	mkdir -p "corpus/$t"
	# -timeout: one input taking 10 s is a hang (each target handles one
	# input in microseconds to milliseconds).
	if cargo fuzz run "$t" --sanitizer none "corpus/$t" -- \
		-max_total_time="$secs" -timeout=10 -print_final_stats=1 >"$logs/$t.log" 2>&1; then
		# libFuzzer's last status line: "#RUNS<tab>DONE   cov: ... exec/s: ...".
		done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$logs/$t.log" | tail -n1 || true)"
		summary+=("$t: $(sed -E 's/^#([0-9]+)[[:space:]]+DONE[[:space:]]+/\1 runs, /' <<<"$done_line")")
	else
		failed+=("$t")
		summary+=("$t: FAILED")
		tail -n 60 "$logs/$t.log"
	fi
done

echo "== summary (runs, coverage, corpus, executions/s)"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
	echo "FAILED: ${failed[*]}; crashing inputs:"
	for t in "${failed[@]}"; do ls -1 "artifacts/$t/" 2>/dev/null | sed "s|^|  fuzz/artifacts/$t/|"; done
	exit 1
fi
echo "all ${#summary[@]} targets ran ${secs}s without a crash"
