# Train a problem (default: Burgers, continuous forward).
run problem="burgers_cont_fwd" *args="":
    cargo run --release -p pinn -- run problems/{{problem}}.toml {{args}}

# The test suite (what CI runs).
test:
    cargo test --release --workspace && cargo check -p pinn-bench --all-targets --features cuda && scripts/library-checks.sh

# Per-iteration time of every problem in every mode, and the paper's Table 1 (runs/bench/).
bench *args="":
    cargo run --release -p pinn-bench -- {{args}}

# The paper's batch-size and depth study (Figure 3) on the 3-D Navier-Stokes problem
# (runs/scaling/: scaling.md, scaling.json, scaling_batch.png, scaling_depth.png).
bench-scaling *args="":
    cargo run --release -p pinn-bench -- scaling {{args}}

# The CPU roofline of the discrete-time steps: products counted and timed alone, against the
# step and the machine's peak (runs/roofline/: roofline.md, roofline.json).
bench-roofline *args="":
    cargo run --release -p pinn-bench -- roofline {{args}}

# A Python environment with PyTorch for the reference timings (from PyPI, about 3 GB).
reference-env dir="/tmp/pinn-torch":
    python3 -m venv {{dir}} && {{dir}}/bin/pip install torch numpy

# `bench` with the PyTorch reference steps (benches/reference/step.py) timed beside ours.
bench-reference dir="/tmp/pinn-torch" *args="":
    cargo run --release -p pinn-bench -- --reference {{dir}}/bin/python {{args}}

# Criterion benchmarks of one training step, fused and eager.
bench-criterion:
    cargo bench -p pinn-bench --bench step

# Check that the CUDA backend compiles (no GPU needed).
check-cuda:
    cargo check -p pinn-bench --all-targets --features cuda

# On a machine with an NVIDIA GPU: the fused layer's CUDA kernels against the CPU ones, then
# every problem in every mode on CUDA (docs/cuda.md).
gpu-check:
    cargo test --release --workspace --features pinn-bench/cuda cube_kernels
    cargo run --release -p pinn-bench --features cuda -- --device cuda

# Build the CUDA binaries and datasets a GPU machine without a toolchain runs
# scripts/gpu-check.sh with (gpu-kit/, docs/cuda.md).
gpu-kit:
    scripts/gpu-kit.sh

# The fused layer's CubeCL kernels through wgpu, on any Vulkan driver (Mesa's lavapipe too).
test-kernels-wgpu:
    cargo test -p pinn-core --features wgpu --lib cube_kernels

# Formatting and lints, as required at every commit.
lint:
    cargo fmt --all --check
    cargo clippy --release --all-targets -- -D warnings

# Generate every reference dataset into datasets/.
data:
    cargo run --release -p pinn -- data all
