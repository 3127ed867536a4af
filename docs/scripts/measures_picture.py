"""docs/measures.png: the score, the converged fraction of 8 seeds, the Lyapunov exponent and an
early snapshot of one sweep (jobs/measures/seeds_and_sensitivity.toml, made smaller).

Run from the repository root, with the package installed:

    python docs/scripts/measures_picture.py [--resolution 96] [--steps 300]
"""

import argparse
import tempfile

from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure

import fractalsweep as fs
from fractalsweep.colour import colormap_of, scale_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=96)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    snapshot = args.steps // 6
    store = fs.run("jobs/measures/seeds_and_sensitivity.toml",
                   tempfile.mkdtemp() + "/measures.zarr", progress=False,
                   overrides=[f"grid.resolution={args.resolution}",
                              f"training.steps={args.steps}",
                              f"measures.snapshots=[{snapshot}]"])
    level = store.level(0)
    figure = Figure(figsize=(16, 4.4), layout="constrained")
    panels = (("score", f"score after {args.steps} steps (seed 0)"),
              (f"score_at_{snapshot}", f"score after {snapshot} steps"),
              ("converged_fraction", "fraction of 8 seeds converged"),
              ("lyapunov", "Lyapunov exponent per step"))
    for ax, (array, title) in zip(figure.subplots(1, 4), panels):
        level.plot(ax=ax, array=array)
        ax.set_title(title)
        if array in ("converged_fraction", "lyapunov"):
            scale = scale_of(array, level[array])
            figure.colorbar(ScalarMappable(scale.norm(), colormap_of(scale.cmap)), ax=ax,
                            shrink=0.8)
    figure.savefig("docs/measures.png", dpi=80)
    print("wrote docs/measures.png")


if __name__ == "__main__":
    main()
