"""What double-double training costs against float64, measured in one process.

Run from the repository root, with the package installed:

    python docs/scripts/doubledouble_cost.py [--pixels 64] [--steps 100] [--repeats 2]

Trains the same pixels of the paper's baseline tile with the float64 kernel and with the
double-double kernel (each compiled first, then timed best of --repeats) and prints
network-steps per second of both and their ratio.
"""

import argparse
import time

import fractalsweep as fs
from fractalsweep import ddkernel, kernel, streams
from fractalsweep.grid import axis_values


def rate(train, cfg, arrays, xs, ys, repeats):
    train(cfg, arrays, xs, ys)  # compile
    best = min(_timed(train, cfg, arrays, xs, ys) for _ in range(repeats))
    return len(xs) * cfg.training.steps / best


def _timed(train, *args):
    start = time.perf_counter()
    train(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixels", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    rates = {}
    for dtype, train in (("float64", kernel.train), ("double-double", ddkernel.train)):
        cfg = fs.job_config("jobs/paper/tanh.toml", [f"training.steps={args.steps}",
                                                    f"dtype='{dtype}'"])
        xs = axis_values(cfg.x, args.pixels, dtype)
        ys = axis_values(cfg.y, args.pixels, dtype)[::-1]
        rates[dtype] = rate(train, cfg, streams.draw(cfg), xs, ys, args.repeats)
        print(f"{dtype:14} {rates[dtype]:>12,.0f} net-steps/s")
    print(f"double-double costs {rates['float64'] / rates['double-double']:.0f} times float64")


if __name__ == "__main__":
    main()
