"""Draw our six paper tiles at 48x48 next to the panels of the paper's figure.

Run from the repository root, with the package installed:

    python docs/scripts/paper_comparison.py --reference FIGURE.png [--outdir build/paper]
        [--workers 2]

For each experiment this runs

    python -m fractalsweep run jobs/paper/NAME.toml --store OUTDIR/NAME.zarr \
        --set grid.resolution=48 --no-render --quiet --workers N

(a run resumes, so a second call only redraws), then writes
docs/paper-comparison.png: one row per experiment, ours on the left, the
paper's panel on the right, cropped from FIGURE.png: Figure 1 of Sohl-Dickstein,
"The boundary of neural network trainability is fractal" (arXiv:2402.06184), saved as
a 1033 x 1349 (width x height) PNG.
"""

import argparse
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import zarr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fractalsweep.colour import to_rgb

# (job name, title, crop box of its panel in the paper's figure as
# (row0, row1, col0, col1), inclusive-exclusive, in pixels).  The reference is
# 1349 x 1033 (rows x cols), a 3 x 2 grid of panels.  Measured as the runs of
# rows / columns holding more than 100 coloured (saturated) pixels: columns
# 53-477 and 596-1019, rows 49-407, 495-852 and 940-1297 (inclusive); those
# runs include the anti-aliased black axes frame, so each box is inset by 2 px.
EXPERIMENTS = [
    ("deep_linear", "deep linear (dim 1.17)", (51, 406, 55, 476)),
    ("relu", "ReLU (dim 1.20)", (51, 406, 598, 1018)),
    ("tanh_one_point", "tanh, one data point (dim 1.41)", (497, 851, 55, 476)),
    ("tanh_minibatch", "tanh minibatch (dim 1.55)", (497, 851, 598, 1018)),
    ("tanh", "tanh full batch (dim 1.66)", (942, 1296, 55, 476)),
    ("param_init", "parameter initialization (dim 1.98)", (942, 1296, 598, 1018)),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, type=Path,
                        help="the paper's Figure 1 as a PNG (1033 x 1349 pixels)")
    parser.add_argument("--outdir", default="build/paper", help="where the stores go")
    parser.add_argument("--workers", default="2", help="local cluster worker processes")
    parser.add_argument("--output", default="docs/paper-comparison.png")
    args = parser.parse_args()

    reference = mpimg.imread(args.reference)[..., :3]
    fig = Figure(figsize=(7, 3.2 * len(EXPERIMENTS)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(EXPERIMENTS), 2)

    for (name, title, (r0, r1, c0, c1)), (ours, paper) in zip(EXPERIMENTS, axes):
        store = Path(args.outdir) / f"{name}.zarr"
        cmd = [sys.executable, "-m", "fractalsweep", "run", f"jobs/paper/{name}.toml"]
        cmd += ["--store", str(store), "--set", "grid.resolution=48"]
        cmd += ["--no-render", "--quiet", "--workers", args.workers]
        subprocess.run(cmd, check=True)
        score = zarr.open_group(str(store), mode="r")["levels/0/score"][:]
        ours.imshow(to_rgb(score), interpolation="nearest", aspect="auto")
        ours.set_title(f"ours, 48x48: {title}", fontsize=8)
        paper.imshow(reference[r0:r1, c0:c1], aspect="auto")
        paper.set_title(f"paper: {title}", fontsize=8)
        for ax in (ours, paper):
            ax.set_xticks([])
            ax.set_yticks([])

    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
