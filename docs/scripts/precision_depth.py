"""How deep float64 can zoom into the paper's baseline before its classes are noise.

Run from the repository root, with the package installed:

    python docs/scripts/precision_depth.py [--resolution 12] [--steps 200] [--workers 2]

First a point of the trainability boundary is found in double-double: along the middle row
of the baseline tile (jobs/paper/tanh.toml), 16 learning rates at a time are trained and the
interval where the class changes is cut 17-fold, to 1e-28 of its value. Windows of relative
width 10**-k centred there all hold the boundary. Each is computed in float64 (past the
precision guard, with --force) and every pixel again in double-double (`Level.audit(None)`);
the table gives the pixels whose class flips, per depth.
"""

import argparse
import tempfile
import time
from decimal import Decimal, localcontext

import numpy as np

import fractalsweep as fs
from fractalsweep import ddkernel, streams
from fractalsweep.doubledouble import split_decimal

DEPTHS = (4, 6, 8, 10, 11, 12, 13, 14, 15, 16)
PROBES = 16  # learning rates per double-double call: one group


def boundary_point(job, steps: int) -> tuple[Decimal, Decimal]:
    """A point where the double-double class changes, on the middle row of the job's tile."""
    cfg = fs.job_config({**job.to_dict(), "dtype": "double-double"},
                        [f"training.steps={steps}"])
    arrays = streams.draw(cfg)
    with localcontext() as ctx:
        ctx.prec = 60
        y = (Decimal(cfg.y.lo) + Decimal(cfg.y.hi)) / 2
        lo, hi = Decimal(cfg.x.lo), Decimal(cfg.x.hi)
        while (hi - lo) / lo > Decimal("1e-28"):
            xs = [lo + (hi - lo) * i / (PROBES + 1) for i in range(PROBES + 2)]
            converged = ddkernel.train(cfg, arrays, np.array([split_decimal(x) for x in xs]),
                                       np.array([split_decimal(y)] * len(xs)))["score"] < 0
            change = int(np.flatnonzero(converged[1:] != converged[:-1])[0])
            lo, hi = xs[change], xs[change + 1]
        return (lo + hi) / 2, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=12)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    job = fs.job_config("jobs/paper/tanh.toml", [f"grid.resolution={args.resolution}",
                                                f"training.steps={args.steps}"])
    start = time.perf_counter()
    centre = boundary_point(job, args.steps)
    print(f"{args.resolution}x{args.resolution} pixels, {args.steps} steps; boundary point "
          f"x = {centre[0]:.30}, y = {centre[1]:.12} ({time.perf_counter() - start:.0f} s)")
    print("| relative width | float64 pixels distinct | class flips in double-double | seconds |")
    print("|---|---|---|---|")
    with fs.Execution(workers=args.workers).session(progress=False) as session:
        store = fs.run(job, tempfile.mkdtemp() + "/depth.zarr", execution=session)
        for k in DEPTHS:
            start = time.perf_counter()
            with localcontext() as ctx:
                ctx.prec = 60
                half = [c * Decimal(10) ** -k / 2 for c in centre]
                box = {a: (c - h, c + h) for a, c, h in zip("xy", centre, half)}
            level = store.zoom(**box, force=True, execution=session)
            room = level.precision()
            distinct = room["x"]["distinct"] and room["y"]["distinct"]
            report = level.audit(None, execution=session)
            print(f"| 1e-{k} | {'yes' if distinct else 'no'} | {report['flipped']} of "
                  f"{report['pixels']} ({report['fraction']:.0%}) | "
                  f"{time.perf_counter() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main()
