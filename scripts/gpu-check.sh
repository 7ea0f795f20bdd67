#!/usr/bin/env bash
# The GPU check in one script, for a machine with an NVIDIA GPU and no Rust toolchain: it runs the
# binaries that `scripts/gpu-kit.sh` built and packed into gpu-kit/ (carried along with the
# working tree) from the repository root. Steps, each under its own time limit, all within
# CHECK_SECONDS (default 420) so that a rerun fits the device budget:
#
#   1. the fused layer's CubeCL kernels against the CPU ones (`cube_kernels` test);
#   2. the reference datasets (unpacked from the kit, or generated);
#   3. Burgers (continuous forward), 2,000 iterations in `eager`, `fused`, `fused` with the hidden
#      layers op by op (`--no-fuse-layers`, Burn's fusion alone) and `graph+fused`: median time
#      per iteration and the loss curve of each, to compare with `fused`;
#   4. kernel launches per training step (`fused` and `eager`, 2 against 4 iterations);
#   5. `pinn-bench` on the device (Table 1, PyTorch eager and CUDA-graph steps beside ours) with
#      whatever time is left; each pair's measurement is also in the log if time runs out.
#
# Output under $OUT (the device tool's), else runs/gpu-check: check.log (a summary of every
# step), runs.tar.gz (every log and metrics file) and bench/ (bench.md, bench.json, table1.png).
# Environment: DEVICE (default cuda; `cpu` tries the script here with a CPU kit), PYTHON
# (default python3, for the PyTorch reference), CHECK_SECONDS, ITERS (step 3, default 2000),
# BENCH_MODES, BENCH_PROBLEMS.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
device=${DEVICE:-cuda}
python=${PYTHON:-python3}
out=${OUT:-runs/gpu-check}
budget=${CHECK_SECONDS:-420}
deadline=$((SECONDS + budget))
work=$(mktemp -d /tmp/gpu-check.XXXX)
kit=$work/kit
mkdir -p "$out" "$kit" "$work/logs"
log=$out/check.log
: > "$log"

say() { echo "$*" | tee -a "$log"; }
# step NAME LIMIT COMMAND...: runs COMMAND with its output in logs/NAME.log, capped at LIMIT
# seconds and at what is left of the budget; says how it ended and shows the log's tail.
step() {
    local name=$1 limit=$2
    shift 2
    local left=$((deadline - SECONDS))
    [ "$left" -lt "$limit" ] && limit=$left
    if [ "$limit" -le 5 ]; then
        say "== $name: skipped, out of time"
        return 1
    fi
    local start=$SECONDS
    timeout "$limit" "$@" > "$work/logs/$name.log" 2>&1
    local rc=$?
    say "== $name: exit $rc after $((SECONDS - start)) s (limit $limit s)"
    tail -n "${TAIL:-12}" "$work/logs/$name.log" | tee -a "$log"
    return $rc
}
finish() {
    tar -czf "$out/runs.tar.gz" -C "$work" logs runs 2> /dev/null
    say "== done in $SECONDS s"
}
trap finish EXIT

say "gpu-check on $(hostname) at $(date -u +%FT%TZ), device $device"
[ -f gpu-kit/BUILD ] || { say "no gpu-kit/ (build it with scripts/gpu-kit.sh and carry it)"; exit 1; }
cat gpu-kit/BUILD | tee -a "$log"
for f in gpu-kit/*.xz; do
    case $f in
        *.tar.xz) tar -xJf "$f" ;;
        *) xz -dc "$f" > "$kit/$(basename "$f" .xz)" && chmod +x "$kit/$(basename "$f" .xz)" ;;
    esac
done
command -v nvidia-smi > /dev/null && nvidia-smi -L | tee -a "$log"

# 1. Kernels.
TAIL=6 step kernels 180 "$kit/pinn-core-tests" cube_kernels --nocapture

# 2. Datasets: from the kit, else generated (about 100 s on 2 cores; all are needed by step 5).
if ls datasets/*/manifest.json > /dev/null 2>&1; then
    say "datasets: $(ls -d datasets/*/ | wc -l) present"
else
    step data 300 "$kit/pinn" data all
fi

# 3. Modes on Burgers: time per iteration and loss curves.
mkdir -p "$work/runs"
iters=${ITERS:-2000}
burgers() { # burgers NAME ARGS...
    local name=$1
    shift
    TAIL=4 step "burgers-$name" 90 "$kit/pinn" run problems/burgers_cont_fwd.toml --device "$device" \
        --iters "$iters" --lbfgs 0 --quiet --out "$work/runs/$name" "$@"
}
burgers fused --mode fused
burgers graph-fused --mode graph+fused
burgers layers-unfused --mode fused --no-fuse-layers
burgers eager --mode eager
for name in fused graph-fused layers-unfused eager; do
    m=$work/runs/$name/metrics.csv
    [ -f "$m" ] && say "loss $name: $(awk -F, -v n="$iters" '$1 == 100 || $1 == n / 2 || $1 == n { printf "%s@%s ", $2, $1 }' "$m")"
done

# 4. Kernel launches per step (cubecl's profiling log, read from the working folder).
launches() { # launches MODE ITERS
    local dir=$work/launches-$1-$2
    mkdir -p "$dir"
    printf '[profiling.logger]\nlevel = "minimal"\nfile = "%s/launches.log"\n' "$dir" > "$dir/cubecl.toml"
    (cd "$dir" && timeout 60 "$kit/pinn" run "$root/problems/burgers_cont_fwd.toml" \
        --device "$device" --mode "$1" --iters "$2" --lbfgs 0 --quiet \
        --data-dir "$root/datasets" --out "$dir/run" > "$dir/stdout.log" 2>&1)
    grep -c Executing "$dir/launches.log" 2> /dev/null || echo 0
}
if [ "$device" != cpu ]; then
    for mode in fused eager; do
        a=$(launches "$mode" 2)
        b=$(launches "$mode" 4)
        say "launches per step, burgers_cont_fwd, $mode: $(((b - a) / 2)) ($a for 2 iterations, $b for 4)"
    done
fi

# 5. Table 1 with what time is left.
bench=(--device "$device" --warmup 10 --iters 30 --out "$out/bench")
[ -n "${BENCH_MODES:-}" ] && bench+=(--modes "$BENCH_MODES")
[ -n "${BENCH_PROBLEMS:-}" ] && bench+=(--problems "$BENCH_PROBLEMS")
command -v "$python" > /dev/null && "$python" -c 'import torch' 2> /dev/null && bench+=(--reference "$python")
TAIL=40 step bench $((deadline - SECONDS - 10)) "$kit/pinn-bench" "${bench[@]}"
