#!/usr/bin/env bash
# The GPU check in one script, for a machine with an NVIDIA GPU and no Rust toolchain: it runs the
# binaries that `scripts/gpu-kit.sh` built and packed into gpu-kit/ (carried along with the
# working tree) from the repository root. Steps, most important first, each under its own time
# limit, all within CHECK_SECONDS (default 420) so that a rerun fits the device budget:
#
#   1. the fused layer's CubeCL kernels against the CPU ones (`cube_kernels` tests);
#   2. the reference datasets (unpacked from the kit, or generated);
#   3. Table 1: `pinn-bench` on the device, all eight problems, PyTorch eager and CUDA-graph steps
#      beside ours; every pair's time and replay status is in bench.log as soon as it is measured
#      and bench/bench.json is rewritten after each problem;
#   4. Burgers (continuous forward) in `eager`, `fused`, `graph+fused` and `fused` with the hidden
#      layers op by op: first losses, loss curve and time per iteration of each; then the 3-D
#      problem's mini-batches in `fused` and `graph+fused` (replayed steps drawing fresh rows);
#   5. kernel launches per step, and a per-kernel profile of one Burgers and one Navier-Stokes
#      step: every launch with its thread blocks and time (cubecl's `full` profiling log, read by
#      scripts/profile-table.py), then sums by kernel;
#   6. compute-sanitizer's memcheck and racecheck on the kernel tests, where the tool exists;
#   7. with what time is left, the batch-size and depth study (`pinn-bench scaling`, the paper's
#      Figure 3) on the 3-D Navier-Stokes problem, scaling/scaling.json rewritten after every
#      measurement (SCALING=0 skips it).
#
# Everything is written under $OUT (the device tool's), else runs/gpu-check, as it happens, in at
# most eight files: check.log (the summary of every step), kernels.log, bench.log,
# bench/{bench.md,bench.json,table1.png}, modes.log and profile.log.
# Environment: DEVICE (default cuda; `cpu` tries the script here with a CPU kit), PYTHON
# (default python3, for the PyTorch reference), CHECK_SECONDS, ITERS (step 4, default 2000),
# BENCH_MODES (default eager,graph,fused,graph+fused), BENCH_PROBLEMS.
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
mkdir -p "$out" "$kit"
out=$(cd "$out" && pwd)
log=$out/check.log
: > "$log"

say() { echo "$*" | tee -a "$log"; }
# step NAME LIMIT FILE COMMAND...: runs COMMAND with its output appended to FILE (under $out),
# capped at LIMIT seconds and at what is left of the budget; says how it ended in check.log with
# the tail of its output.
step() {
    local name=$1 limit=$2 file=$out/$3
    shift 3
    local left=$((deadline - SECONDS))
    [ "$left" -lt "$limit" ] && limit=$left
    if [ "$limit" -le 5 ]; then
        say "== $name: skipped, out of time"
        return 1
    fi
    local start=$SECONDS
    echo "== $name: $*" >> "$file"
    local mark
    mark=$(wc -l < "$file")
    timeout "$limit" "$@" >> "$file" 2>&1
    local rc=$?
    say "== $name: exit $rc after $((SECONDS - start)) s (limit $limit s)"
    tail -n +"$((mark + 1))" "$file" | tail -n "${TAIL:-12}" | tee -a "$log"
    return $rc
}
trap 'say "== done in $SECONDS s"' EXIT

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
TAIL=8 step kernels 120 kernels.log "$kit/pinn-core-tests" cube --nocapture --test-threads 1

# 2. Datasets: from the kit, else generated (about 100 s on 2 cores; step 3 needs all of them).
missing=()
for d in burgers kdv allen_cahn schrodinger cylinder_wake; do
    [ -f "datasets/$d/manifest.json" ] || missing+=("$d")
done
if [ ${#missing[@]} -eq 0 ]; then
    say "datasets: all present"
else
    TAIL=3 step data 240 check.log "$kit/pinn" data all
fi

# 3. Table 1, leaving 150 s for the steps after it.
bench=(--root "$root" --device "$device" --warmup 10 --iters 30 --out "$out/bench")
bench+=(--modes "${BENCH_MODES:-eager,graph,fused,graph+fused}")
[ -n "${BENCH_PROBLEMS:-}" ] && bench+=(--problems "$BENCH_PROBLEMS")
command -v "$python" > /dev/null && "$python" -c 'import torch' 2> /dev/null && bench+=(--reference "$python")
TAIL=40 step bench $((deadline - SECONDS - 150)) bench.log "$kit/pinn-bench" "${bench[@]}"

# 4. Modes on Burgers: first losses, loss curves and time per iteration.
iters=${ITERS:-2000}
burgers() { # burgers NAME ARGS...
    local name=$1
    shift
    TAIL=3 step "burgers-$name" 40 modes.log "$kit/pinn" run problems/burgers_cont_fwd.toml \
        --device "$device" --iters "$iters" --lbfgs 0 --quiet --out "$work/runs/$name" "$@"
    local m=$work/runs/$name/metrics.csv
    [ -f "$m" ] && say "loss $name: $(awk -F, -v n="$iters" \
        'NR == 2 || $1 == 100 || $1 == n / 2 || $1 == n { printf "%s@%s ", $2, $1 }' "$m")"
}
burgers eager --mode eager
burgers fused --mode fused
burgers graph-fused --mode graph+fused
burgers layers-unfused --mode fused --no-fuse-layers
# Mini-batches under graph replay: the captured step draws its rows on the device from Adam's
# step counter, so graph+fused must follow fused's loss curve (f32 rounding apart), and the
# report must not say the replay was abandoned.
for mode in fused graph+fused; do
    TAIL=3 step "beltrami-$mode" 60 modes.log "$kit/pinn" run problems/beltrami3d.toml \
        --device "$device" --mode "$mode" --iters 300 --quiet --out "$work/runs/beltrami-$mode"
    m=$work/runs/beltrami-$mode/metrics.csv
    [ -f "$m" ] && say "loss beltrami3d $mode: $(awk -F, 'NR >= 2 { printf "%s@%s ", $2, $1 }' "$m")"
    grep -h -o '"graph_replay": *"[^"]*"' "$work/runs/beltrami-$mode/report.json" 2> /dev/null | tee -a "$log"
done

# 5. Per-kernel profile and launches per step (cubecl's profiling log, read from the working
# folder's cubecl.toml).
profile() { # profile PROBLEM MODE ITERS LEVEL: the profiling log of one warm-up and ITERS steps
    local dir=$work/profile-$1-$2-$3-$4
    mkdir -p "$dir"
    rm -f "$dir/profile.log"
    printf '[profiling.logger]\nlevel = "%s"\nfile = "%s/profile.log"\n' "$4" "$dir" > "$dir/cubecl.toml"
    (cd "$dir" && timeout 90 "$kit/pinn-bench" --root "$root" measure --problem "$1" --mode "$2" \
        --device "$device" --warmup 1 --iters "$3" > "$dir/stdout.log" 2>&1)
    echo "$dir/profile.log"
}
launches_per_step() { # launches_per_step PROBLEM MODE: from the logs of 1 + 2 and 1 + 4 steps
    local a b
    a=$(grep -c Executing "$(profile "$1" "$2" 2 minimal)" 2> /dev/null || echo 0)
    b=$(grep -c Executing "$(profile "$1" "$2" 4 minimal)" 2> /dev/null || echo 0)
    echo $(((b - a) / 2))
}
if [ "$device" != cpu ]; then
    declare -A per_step
    for mode in fused eager; do
        per_step[$mode]=$(launches_per_step burgers_cont_fwd "$mode")
        say "launches per step, burgers_cont_fwd, $mode: ${per_step[$mode]}"
    done
    # One step's launches in order with their thread blocks and times, and their sums by kernel
    # (scripts/profile-table.py reads cubecl's `full` log, where every launch is timed alone).
    for problem in burgers_cont_fwd ns_cont_inv; do
        [ $((deadline - SECONDS)) -lt 60 ] && { say "== profile $problem: skipped, out of time"; continue; }
        if [ "$problem" = burgers_cont_fwd ]; then n=${per_step[fused]}; else n=$(launches_per_step "$problem" fused); fi
        f=$(profile "$problem" fused 3 full)
        { echo "== profile: $problem, fused, the last of 4 steps ($n launches a step)"
          "$python" scripts/profile-table.py "$f" "$n" 2>&1; } >> "$out/profile.log"
        say "profile $problem: $n launches a step; $(grep -h '^launches of one or two' "$out/profile.log" | tail -1)"
    done
fi

# 6. compute-sanitizer on the kernel tests.
if command -v compute-sanitizer > /dev/null && [ "$device" != cpu ]; then
    for tool in memcheck racecheck; do
        TAIL=6 step "sanitizer-$tool" 60 kernels.log compute-sanitizer --tool "$tool" \
            "$kit/pinn-core-tests" cube_kernels_match_the_cpu_fused_layer --test-threads 1
    done
else
    say "compute-sanitizer: not on this machine"
fi

# 7. The batch-size and depth study, with what is left (a few warm-up and timed steps each).
if [ "${SCALING:-1}" != 0 ]; then
    TAIL=30 step scaling $((deadline - SECONDS - 5)) scaling.log "$kit/pinn-bench" \
        --root "$root" scaling --device "$device" --warmup 3 --iters 10 --out "$out/scaling"
fi
