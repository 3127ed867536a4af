"""The fused kernel's launch for Nsight Compute to profile: what limits it on a GPU.

Run in the repository's root on a machine whose JAX sees a GPU, under ``ncu``; the first
call compiles (and is skipped), the second is the one profiled:

    ncu -k regex:fused --launch-skip 1 --launch-count 1 --set full -o REPORT \\
        python docs/scripts/fused_ncu.py [--dtype float64] [--pixels 16384] [--steps 100]
    ncu -i REPORT.ncu-rep --page details

It trains ``--pixels`` pixels of the baseline tile (on its diagonal, as ``bench``) for
``--steps`` steps with the fused kernel at its launch (``fused.LAUNCH``), without early
exit, twice.
"""

import argparse

import jax
from gpu_measure import baseline  # this folder's: the baseline tile at a dtype and steps

from fractalsweep import bench, kernel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    parser.add_argument("--pixels", type=int, default=16384)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    cfg, arrays = baseline(args.dtype, args.steps)
    xs, ys = bench._pixels(cfg, args.pixels)
    with jax.enable_x64(True):
        for _ in range(2):
            kernel.train(cfg, arrays, xs, ys, kernel="pallas", group=args.pixels,
                         early_exit=False)


if __name__ == "__main__":
    main()
