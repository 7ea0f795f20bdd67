#!/usr/bin/env python3
"""Per-launch table of one training step from cubecl's profiling log at level `full`.

Usage: profile-table.py LOG LAUNCHES_PER_STEP

The log (a `cubecl.toml` with `[profiling.logger] level = "full"`) has one entry per kernel
launch: its duration, the kernel's type name with its compile-time configuration over many lines,
and its `CubeCount`. This prints the last LAUNCHES_PER_STEP launches (one step, when the run ended
on a whole step) one per line, in order, with the number of thread blocks each launched, then the
same launches summed by kernel. Launches of one or two blocks that take long are the ones that
leave a large GPU idle (a reduction or product walking every row of a stacked jet in one block).
Each full-level launch is timed on its own, so the sum is the kernels' time, not the step's.
"""

import collections
import re
import sys

UNITS = {"s": 1e3, "ms": 1.0, "µs": 1e-3, "us": 1e-3, "ns": 1e-6}


def launches(text):
    """(milliseconds, kernel, blocks) of every timed launch in the log, in order."""
    for entry in re.split(r"\n(?=\| )", text):
        head = re.match(r"\| *([\d.]+)(s|ms|µs|us|ns) *\| *([^<:\s]+(?:::[^<:\s]+)*)", entry)
        if not head:
            continue
        value, unit, path = head.groups()
        kernel = path.split("::")[-1]
        if kernel == "MatmulEntry":
            tile = re.search(r"tile_size: TileSize \{\s*m: (\d+),\s*n: (\d+),\s*k: (\d+)", entry)
            kernel = "Matmul" + (" tile " + "x".join(tile.groups()) if tile else "")
        count = re.search(r"CubeCount \(([^)]*)\)", entry)
        blocks = 1
        if count:
            for dim in count.group(1).split(","):
                blocks *= int(dim.strip() or 1)
        else:
            blocks = None
        yield float(value) * UNITS[unit], kernel, blocks


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
        every = list(launches(f.read()))
    per_step = int(sys.argv[2])
    if not every:
        sys.exit(f"{sys.argv[1]}: no timed launches (is the level `full`?)")
    step = every[-per_step:] if per_step > 0 else every
    total = sum(ms for ms, _, _ in step)
    print(f"{len(step)} launches (of {len(every)} in the log), {total:.3f} ms of kernels")
    print(f"{'#':>4} {'ms':>9} {'blocks':>8}  kernel")
    for i, (ms, kernel, blocks) in enumerate(step):
        print(f"{i:4d} {ms:9.3f} {blocks if blocks is not None else '?':>8}  {kernel}")
    by_kernel = collections.defaultdict(lambda: [0, 0.0, set()])
    for ms, kernel, blocks in step:
        row = by_kernel[kernel]
        row[0] += 1
        row[1] += ms
        row[2].add(blocks)
    print(f"\n{'ms':>9} {'share':>6} {'launches':>8}  kernel (blocks)")
    for kernel, (n, ms, blocks) in sorted(by_kernel.items(), key=lambda kv: -kv[1][1]):
        shown = sorted(b for b in blocks if b is not None)
        print(f"{ms:9.3f} {ms / total:6.1%} {n:8d}  {kernel} ({', '.join(map(str, shown))})")
    lonely = [(ms, k, b) for ms, k, b in step if b is not None and b <= 2]
    lonely_ms = sum(ms for ms, _, _ in lonely)
    print(f"\nlaunches of one or two blocks: {len(lonely)}, {lonely_ms:.3f} ms ({lonely_ms / total:.1%})")


if __name__ == "__main__":
    main()
