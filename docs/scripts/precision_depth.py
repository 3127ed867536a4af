"""How deep float64 can zoom into the paper's baseline tile before its classes are noise.

Run from the repository root, with the package installed:

    python docs/scripts/precision_depth.py [--resolution 12] [--steps 200] [--workers 2]

Around the centre of the baseline tile (jobs/paper/tanh.toml), levels of relative width
10**-k are computed in float64, and every pixel of each is computed again in double-double
(`Level.audit(None)`). Prints a markdown table of the pixels whose class flips, per depth.
"""

import argparse
import tempfile
import time
from decimal import Decimal

import fractalsweep as fs

DEPTHS = (3, 5, 7, 9, 10, 11, 12, 13, 14, 15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=12)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    job = fs.job_config("jobs/paper/tanh.toml", [f"grid.resolution={args.resolution}",
                                                f"training.steps={args.steps}"])
    centre = [(Decimal(a.lo) + Decimal(a.hi)) / 2 for a in (job.x, job.y)]
    print(f"{args.resolution}x{args.resolution} pixels, {args.steps} steps, centre "
          f"{centre[0]:.10g}, {centre[1]:.10g}")
    print("| relative width | float64 pixels distinct | flipped in double-double | seconds |")
    print("|---|---|---|---|")
    with fs.Execution(workers=args.workers).session(progress=False) as session:
        store = fs.run(job, tempfile.mkdtemp() + "/depth.zarr", execution=session)
        for k in DEPTHS:
            start = time.perf_counter()
            width = [float(c) * 10.0 ** -k for c in centre]  # value units: 10**-k relative
            level = store.zoom(x=(centre[0] - Decimal(width[0]) / 2,
                                  centre[0] + Decimal(width[0]) / 2),
                               y=(centre[1] - Decimal(width[1]) / 2,
                                  centre[1] + Decimal(width[1]) / 2),
                               force=True, execution=session)
            distinct = level.precision()["x"]["distinct"] and level.precision()["y"]["distinct"]
            report = level.audit(None, execution=session)
            print(f"| 1e-{k} | {'yes' if distinct else 'no'} | {report['flipped']} of "
                  f"{report['pixels']} ({report['fraction']:.0%}) | "
                  f"{time.perf_counter() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main()
