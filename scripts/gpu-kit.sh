#!/usr/bin/env bash
# Builds, on a machine with the Rust toolchain, what a GPU check carries to a machine that has
# an NVIDIA GPU but no toolchain, registry or internet: `pinn`, `pinn-bench` and the fused-layer
# kernel test, built with `--features cuda`, stripped and xz-compressed into gpu-kit/ (ignored by
# git), plus the generated datasets when they fit. `scripts/gpu-check.sh` runs it there.
#
#   scripts/gpu-kit.sh            # about 30 minutes from scratch on 2 cores
#   KIT_FEATURES= scripts/gpu-kit.sh   # a CPU-only kit, to try gpu-check.sh here
#
# Environment: KIT_FEATURES (default `cuda`), KIT_LIMIT_MB (default 60: the device tool carries
# at most 64 MiB with the working tree).
set -euo pipefail
cd "$(dirname "$0")/.."
features=${KIT_FEATURES-cuda}
limit_mb=${KIT_LIMIT_MB:-60}
kit=gpu-kit
build_features=()
core_features=()
if [ -n "$features" ]; then
    build_features=(--features "pinn/$features,pinn-bench/$features")
    core_features=(--features "$features")
fi

# The binaries, and the path of pinn-core's unit-test binary (it holds the kernel test).
cargo build --release -p pinn -p pinn-bench "${build_features[@]}"
test_bin=$(cargo test --release -p pinn-core "${core_features[@]}" --lib --no-run --message-format=json \
    | jq -r 'select(.reason == "compiler-artifact" and .profile.test and .executable != null) | .executable' \
    | tail -n 1)
[ -x "$test_bin" ] || { echo "no pinn-core test binary found" >&2; exit 1; }

rm -rf "$kit"
mkdir -p "$kit"
pack() { # pack SOURCE NAME: strip a copy and compress it
    strip -o "$kit/$2" "$1"
    xz -9 -T0 "$kit/$2"
}
pack target/release/pinn pinn
pack target/release/pinn-bench pinn-bench
pack "$test_bin" pinn-core-tests
echo "features: ${features:-none}" > "$kit/BUILD"
git rev-parse HEAD >> "$kit/BUILD"

# Every reference dataset, so that the device spends none of its time generating them.
target/release/pinn data all

size_mb() { du -sm "$1" | cut -f1; }
if [ -d datasets ] && ls datasets/*/manifest.json > /dev/null 2>&1; then
    tar -cf - --exclude=README.md datasets | xz -9 -T0 > "$kit/datasets.tar.xz"
    if [ "$(size_mb "$kit")" -gt "$limit_mb" ]; then
        echo "datasets left out (the kit would pass ${limit_mb} MiB); generated on the device instead"
        rm "$kit/datasets.tar.xz"
    fi
fi
ls -l "$kit"
echo "gpu-kit: $(size_mb "$kit") MiB (carry it: device run with carry = [\"gpu-kit\"])"
