"""The measurements behind docs/dimension.md: both methods on sets of known dimension.

Run from the repository root, with the package installed:

    python docs/scripts/dimension_accuracy.py [--size 2048] [--tables accuracy,variants,...]
        [--plot docs/dimension-rabbit.png]

Draws every set of tests/shapes.py at SIZE pixels a side (plus margins) and prints
markdown tables:

accuracy  true value, the paper's recipe, the sliding method with its 95% interval.
variants  each design choice of the sliding method against its alternatives, on the
          fractals with a known value: one box grid or the minimum over 16 random grid
          shifts instead of the average over all, other fitted ranges, the median of
          local slopes instead of a least-squares line.
slopes    local slopes by box size (between sizes a factor 2 apart), which show where
          the pixel grid and the image's size bend the counts.
render    the Julia sets drawn with the distance estimate (pixels within half a pixel of
          the set count as inside) or fewer iterations, against plain escape time.

With --plot, also the log-log plot of Douady's rabbit (plot_dimension).
"""

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from fractalsweep.boundary import boundary, box_counts, box_sums, sliding_box_counts, summed_area
from fractalsweep.dimension import (
    dimension_of_images,
    local_slopes,
    plot_dimension,
    sliding_fit,
    sliding_sizes,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from shapes import RABBIT, REFERENCES, attracting_cycle, julia, shapes

KNOWN_FRACTALS = ["Koch snowflake", "Sierpinski gasket", "Julia, Douady rabbit",
                  "Julia, c = 1/4 (cauliflower)"]


def shifted_counts(mask, sizes, shifts=16, seed=0):
    """The minimum of ``N(s)`` over one grid and ``shifts - 1`` randomly shifted ones."""
    table, rng = summed_area(mask), np.random.default_rng(seed)
    ny, nx = mask.shape
    counts = []
    for s in sizes:
        best = math.inf
        for dy, dx in [(0, 0), *rng.integers(0, s, (shifts - 1, 2))]:
            ey = np.unique(np.r_[0, np.arange(dy, ny, s), ny])
            ex = np.unique(np.r_[0, np.arange(dx, nx, s), nx])
            top, bottom, left, right = ey[:-1, None], ey[1:, None], ex[None, :-1], ex[None, 1:]
            inside = box_sums(table, top, bottom, left, right)
            cells = (bottom - top) * (right - left)
            best = min(best, np.count_nonzero((inside > 0) & (inside < cells)))
        counts.append(best)
    return np.array(counts, dtype=float)


def fit_over(sizes, counts, low, high):
    """The sliding method's fit (slope and interval) with another fitted range."""
    fitted = (sizes >= low) & (sizes <= high)
    return sliding_fit([sizes], [counts], [fitted])


def accuracy(images, size):
    print(f"\n### Accuracy at {size} x {size}\n")
    print("| set | true value | paper | sliding | 95% interval | error | seconds |")
    print("|---|---|---|---|---|---|---|")
    for name, image in images.items():
        true = REFERENCES[name][0]
        paper = dimension_of_images([image], method="paper")
        start = time.perf_counter()
        sliding = dimension_of_images([image])
        seconds = time.perf_counter() - start
        low, high = sliding.interval
        truth = "(none found)" if true is None else f"{true:.4f}"
        error = "" if true is None else f"{sliding.dimension - true:+.3f}"
        print(f"| {name} | {truth} | {paper.dimension:.3f} | {sliding.dimension:.3f} "
              f"| {low:.3f}-{high:.3f} | {error} | {seconds:.1f} |")


def variants(images, size):
    n = max(next(iter(images.values())).shape)
    sizes, fitted = sliding_sizes(n)
    low, high = sizes[fitted][0], sizes[fitted][-1]
    rows = {f"sliding, fit {low}-{high} px (the default)": [], "one grid, same fit": [],
            "min of 16 grid shifts, same fit": [], f"sliding, fit 8-{high} px": [],
            f"sliding, fit 32-{high} px": [], f"sliding, fit {low}-{high // 2} px": [],
            f"sliding, fit 4-{n // 2} px (no choice)": [],
            "sliding, median of local slopes 10 px to half the image": []}
    for name in KNOWN_FRACTALS:
        mask = boundary(images[name])
        sliding = sliding_box_counts(mask, sizes)
        one, least = box_counts(mask, sizes).astype(float), shifted_counts(mask, sizes)
        estimates = [fit_over(sizes, sliding, low, high)[0], fit_over(sizes, one, low, high)[0],
                     fit_over(sizes, least, low, high)[0], fit_over(sizes, sliding, 8, high)[0],
                     fit_over(sizes, sliding, 32, high)[0],
                     fit_over(sizes, sliding, low, high // 2)[0],
                     fit_over(sizes, sliding, 4, n // 2)[0]]
        paper_range = sizes >= 10
        estimates.append(float(np.median(local_slopes(sizes[paper_range],
                                                      sliding[paper_range]))))
        for row, estimate in zip(rows.values(), estimates):
            row.append(estimate - REFERENCES[name][0])
    print(f"\n### Design choices at {size} x {size}: error (estimate - true)\n")
    print("| variant | " + " | ".join(KNOWN_FRACTALS) + " | mean abs. error |")
    print("|---|" + "---|" * (len(KNOWN_FRACTALS) + 1))
    for label, errors in rows.items():
        print(f"| {label} | " + " | ".join(f"{e:+.3f}" for e in errors)
              + f" | {np.mean(np.abs(errors)):.3f} |")


def slopes(images, size):
    n = max(next(iter(images.values())).shape)
    sizes = 2 ** np.arange(1, int(np.log2(n)))
    print(f"\n### Local slopes -log2(N(2s) / N(s)) at {size} x {size}, sliding counts\n")
    print("| set | true value | " + " | ".join(f"{s}-{2 * s}" for s in sizes[:-1]) + " |")
    print("|---|---|" + "---|" * (len(sizes) - 1))
    for name, image in images.items():
        counts = sliding_box_counts(boundary(image), sizes)
        with np.errstate(divide="ignore", invalid="ignore"):
            octave = -np.log2(counts[1:] / counts[:-1])
        true = REFERENCES[name][0]
        print(f"| {name} | {'-' if true is None else f'{true:.3f}'} | "
              + " | ".join(f"{d:.3f}" for d in octave) + " |")


def render(size):
    cycle = [(p, 1e-2) for p in attracting_cycle(RABBIT, 3)]
    petal = [(0.45, 0.05)]
    drawings = {
        "rabbit, escape time (2000 iterations)": julia(RABBIT, 3.0, size, traps=cycle),
        "rabbit, distance estimate < 0.5 px inside": julia(RABBIT, 3.0, size, traps=cycle,
                                                            near=0.5),
        "cauliflower, escape time (5000 iterations)": julia(0.25, 2.45, size, 5000, petal),
        "cauliflower, escape time (500 iterations)": julia(0.25, 2.45, size, 500, petal),
        "cauliflower, distance estimate < 0.5 px inside": julia(0.25, 2.45, size, 5000, petal,
                                                                near=0.5),
    }
    print(f"\n### Drawing the Julia sets at {size} x {size}: sliding estimate\n")
    print("| drawing | estimate | 95% interval |")
    print("|---|---|---|")
    for label, image in drawings.items():
        result = dimension_of_images([image])
        print(f"| {label} | {result.dimension:.3f} | "
              f"{result.interval[0]:.3f}-{result.interval[1]:.3f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048, help="pixels a side (default 2048)")
    parser.add_argument("--tables", default="accuracy,variants,slopes,render",
                        help="which tables, comma-separated (default: all)")
    parser.add_argument("--plot", metavar="FILE", help="also plot Douady's rabbit here")
    args = parser.parse_args()
    tables = args.tables.split(",")
    images = {}
    if {"accuracy", "variants", "slopes"} & set(tables):
        for name, draw in shapes(args.size).items():
            start = time.perf_counter()
            images[name] = draw()
            print(f"drew {name} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    for table in tables:
        if table == "render":
            render(args.size)
        else:
            {"accuracy": accuracy, "variants": variants, "slopes": slopes}[table](images,
                                                                               args.size)
    if args.plot:
        rabbit = images.get("Julia, Douady rabbit")
        if rabbit is None:
            rabbit = shapes(args.size)["Julia, Douady rabbit"]()
        plot_dimension(dimension_of_images([rabbit]), args.plot)


if __name__ == "__main__":
    main()
