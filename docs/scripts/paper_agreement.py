"""Rough numbers behind the match statements of docs/paper.md.

Run from the repository root after docs/scripts/paper_comparison.py (same --outdir):

    python docs/scripts/paper_agreement.py --reference paper-figure.png \
        [--outdir build/paper] [--param-init-128 STORE]

Per experiment: each reference pixel is classed converged / diverged by its
nearest Spectral colour (displayed value > 0 = converged), sampled at the
centres of a 48 x 48 grid and compared with the sign of our score ("agree");
"chance" is the agreement of two unrelated images with the same class
fractions; "fit" is the median RGB distance of the reference pixels to the
nearest Spectral colour (large = the panel's colours are not plain Spectral,
so its classes are unreliable).  With --param-init-128, also the correlation
of blue-minus-red after blurring our 128 x 128 parameter-initialization picture
(sigma 2 px) and the paper's panel (sigma 7 px), and the same with ours flipped
upside down / left-right as a baseline.
"""

import argparse
import sys
from pathlib import Path

import matplotlib
import matplotlib.image as mpimg
import numpy as np
import zarr
from scipy.ndimage import gaussian_filter, zoom

from fractalsweep.colour import to_rgb

sys.path.insert(0, str(Path(__file__).parent))
from paper_comparison import EXPERIMENTS

LUT = matplotlib.colormaps["Spectral"](np.linspace(0, 1, 512))[:, :3]
VALUES = np.linspace(-1, 1, 512)


def score(store):
    return zarr.open_group(str(store), mode="r")["levels/0/score"][:]


def blue_minus_red(rgb, sigma):
    return gaussian_filter(rgb[..., 2], sigma) - gaussian_filter(rgb[..., 0], sigma)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, type=Path,
                        help="the paper's Figure 1 as a PNG (1033 x 1349 pixels)")
    parser.add_argument("--outdir", default="build/paper")
    parser.add_argument("--param-init-128", help="store of param_init at resolution 128")
    args = parser.parse_args()
    reference = mpimg.imread(args.reference)[..., :3]

    for name, _, (r0, r1, c0, c1) in EXPERIMENTS:
        panel = reference[r0:r1, c0:c1]
        dist = ((panel[:, :, None, :] - LUT[None, None]) ** 2).sum(-1)
        paper = VALUES[dist.argmin(-1)] > 0
        h, w = paper.shape
        rows = ((np.arange(48) + 0.5) * h / 48).astype(int)
        cols = ((np.arange(48) + 0.5) * w / 48).astype(int)
        paper = paper[np.ix_(rows, cols)]
        ours = score(Path(args.outdir) / f"{name}.zarr")[::-1] < 0  # top row first
        chance = ours.mean() * paper.mean() + (1 - ours.mean()) * (1 - paper.mean())
        print(
            f"{name:15s} converged paper {paper.mean():.2f} ours {ours.mean():.2f}  "
            f"agree {(paper == ours).mean():.2f}  chance {chance:.2f}  "
            f"fit {np.median(np.sqrt(dist.min(-1))):.3f}"
        )

    if args.param_init_128:
        r0, r1, c0, c1 = EXPERIMENTS[-1][2]
        paper = blue_minus_red(reference[r0:r1, c0:c1], 7)
        ours = blue_minus_red(to_rgb(score(args.param_init_128)) / 255, 2)
        paper = zoom(
            paper, (ours.shape[0] / paper.shape[0], ours.shape[1] / paper.shape[1]), order=1
        )
        for label, o in [
            ("as is", ours),
            ("upside down", ours[::-1]),
            ("left-right", ours[:, ::-1]),
        ]:
            print(
                f"param_init 128 blurred blue-red correlation, ours {label}: "
                f"{np.corrcoef(o.ravel(), paper.ravel())[0, 1]:.2f}"
            )


if __name__ == "__main__":
    main()
