#!/usr/bin/env bash
# What a crate that depends on pinn sees, checked; the last part of the README's test command.
# 1. The API documentation builds without a warning (broken links, undocumented items).
# 2. examples/downstream/, a crate outside the workspace that uses pinn as a user's crate does
#    (docs/embedding.md), builds and runs; it exits non-zero when its error bounds fail.
# 3. The same crate checks with `cuda`, offline (the [patch.crates-io] line it carries).
set -euo pipefail
cd "$(dirname "$0")/.."
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --locked
cd examples/downstream
cargo run --release --locked
cargo check --locked --features cuda
