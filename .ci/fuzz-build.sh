#!/usr/bin/env bash
# Builds the cargo-fuzz target(s) in fuzz/ and, if a runnable fuzzer came out,
# runs it briefly over the seeds so CI proves it still builds AND runs.
#
# Stable Rust only. cargo-fuzz's default (AddressSanitizer) needs nightly
# (`-Zsanitizer=address`), so we build with `--sanitizer none`: the coverage
# instrumentation cargo-fuzz adds (`-Cpasses=sancov-module` + `-Cllvm-args=...`)
# is made of stable -C flags, and libFuzzer itself is C++ compiled by
# libfuzzer-sys's build script (needs a C++ compiler: g++ is enough). With
# `--sanitizer none`, cargo-fuzz 0.13 adds no -Z flag of its own (only for
# ASan/MSan/build-std), so RUSTC_BOOTSTRAP=1 is belt and braces: it keeps the
# build working on stable if a future cargo-fuzz adds one. Verified here with
# rustc 1.95.0 stable + cargo-fuzz 0.13.2.
#
# A crash (panic, failed assert, e.g. formatter idempotence) makes this script
# exit non-zero; the input is left in fuzz/artifacts/config/ and can be
# replayed with:
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none config fuzz/artifacts/config/<file>
# Without ASan, memory errors in unsafe code go undetected, but panics,
# failed asserts, overflows (debug assertions are on) and timeouts/OOMs are
# caught, which is what matters for this (safe Rust) front end.
#
# The fuzz crate is its own workspace (fuzz/Cargo.toml has `[workspace]`), so
# it builds into fuzz/target with its own lock and never waits on the main
# build.
#
# Env: FUZZ_SECONDS (default 20) for the run; 0 only replays the seeds once, which
# proves the fuzzer runs without making CI depend on what a random search finds
# (known open finding: hcl-edit 0.10's parser takes seconds on some malformed
# inputs with many unclosed braces, which libFuzzer reports as a timeout).
set -euo pipefail

cd "$(dirname "$0")/.."
FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
TARGETS="${FUZZ_TARGETS:-config eval}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
cargo fuzz --version

echo "== building fuzz targets (stable, --sanitizer none)"
start=$(date +%s)
RUSTC_BOOTSTRAP=1 cargo fuzz build --sanitizer none
echo "== build took $(( $(date +%s) - start ))s"

for TARGET in $TARGETS; do
    if [[ "$FUZZ_SECONDS" == 0 ]]; then
        echo "== replaying the seeds of $TARGET"
        RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none "$TARGET" "fuzz/seeds/$TARGET" -- -runs=0
        continue
    fi
    # Working corpus under fuzz/corpus (gitignored), seeded from the committed
    # fuzz/seeds. New inputs go into the first directory only.
    corpus="fuzz/corpus/$TARGET"
    mkdir -p "$corpus" "fuzz/artifacts/$TARGET"
    echo "== fuzzing $TARGET for ${FUZZ_SECONDS}s"
    start=$(date +%s)
    RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none "$TARGET" \
        "$corpus" "fuzz/seeds/$TARGET" -- \
        -max_total_time="$FUZZ_SECONDS" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1
    echo "== fuzzing $TARGET took $(( $(date +%s) - start ))s, no crash"
done
