# Train a problem (default: Burgers, continuous forward).
run problem="burgers_cont_fwd" *args="":
    cargo run --release -p pinn -- run problems/{{problem}}.toml {{args}}

# The test suite (what CI runs).
test:
    cargo test --release --workspace

# Criterion benchmarks of one training step.
bench:
    cargo bench -p pinn-bench

# Formatting and lints, as required at every commit.
lint:
    cargo fmt --all --check
    cargo clippy --release --all-targets -- -D warnings

# Generate every reference dataset into datasets/.
data:
    cargo run --release -p pinn -- data all
