"""The dimension of Julia sets computed as fractalsweep stores, against published values.

Run from the repository root, with the package installed:

    python docs/scripts/fractal_dimensions.py [--size 2048] [--workers 2]

Each job of jobs/fractals/ with a published Hausdorff dimension is computed as a store at
SIZE x SIZE pixels (through `fractalsweep.run`, on a local cluster), and its boundary measured
with both methods of `Store.dimension`. Prints a markdown table for docs/dimension.md.
"""

import argparse
import tempfile
import time

import fractalsweep as fs

# Published values and their sources: docs/dimension.md.
JOBS = {"julia_rabbit": 1.3934, "julia_cauliflower": 1.0812}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print("| job | published | sliding [95% interval] | paper | store (s) |")
    print("|---|---|---|---|---|")
    folder = tempfile.mkdtemp()
    for name, published in JOBS.items():
        start = time.perf_counter()
        store = fs.run(f"jobs/fractals/{name}.toml", f"{folder}/{name}.zarr",
                       overrides=[f"grid.resolution={args.size}"], workers=args.workers,
                       progress=False)
        seconds = time.perf_counter() - start
        sliding, paper = (store.dimension(levels=[0], method=m) for m in ("sliding", "paper"))
        low, high = sliding.interval
        print(f"| {name} | {published} | {sliding.dimension:.3f} [{low:.3f}-{high:.3f}] | "
              f"{paper.dimension:.3f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
