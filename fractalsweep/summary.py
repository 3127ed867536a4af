"""What a store holds, for people (``fractalsweep info``) and for programs (``--json``)."""

from __future__ import annotations

import numpy as np

from . import store
from .config import SYSTEM_KEYS, TRAINING_ONLY
from .levels import view_of
from .precision import decades_left
from .render import end_labels
from .verify import damaged_tiles

__all__ = ["describe", "format_info"]


def describe(path: str) -> dict:
    """The store's root metadata and, per level, its window, pixels, tiles and classes, and
    the tiles a reader cannot trust (``damaged``, see :func:`fractalsweep.verify.damaged_tiles`);
    ``lost_levels``: the finished tiles of each level whose metadata is lost."""
    root = store.open_root(path)
    meta = dict(root.attrs["fractalsweep"])
    cfg = store.config_of(path)
    levels = []
    for index in store.level_indices(root):
        lvl = store.open_level(root, index)
        # the score read (unfinished tiles as not computed), every per-pixel array listed
        values, damaged = damaged_tiles(lvl, listed=lvl.pixel_arrays)
        score = values["score"]
        done = lvl.done
        attrs = lvl.group.attrs
        levels.append({"level": index, "view": attrs["view"],
                       "resolution": attrs["resolution"], "tile": attrs["tile"],
                       "dtype": attrs["dtype"], "preview": attrs["preview"],
                       "kind": attrs["kind"], "reused_pixels": attrs["reused_pixels"],
                       "arrays": lvl.arrays,
                       "tiles_done": int(done.sum()), "tiles": int(done.size),
                       "converged": int((score < 0).sum()),
                       "diverged": int((score >= 0).sum()),
                       "not_computed": int(np.isnan(score).sum()),
                       "audit": attrs.get("audit"),
                       "decades_left": decades_left(view_of(lvl, cfg), attrs["resolution"],
                                                    attrs["dtype"]),
                       "damaged": [list(tile) for tile in damaged]})
    return {"path": path, **meta, "levels": levels, "lost_levels": store.lost_levels(root)}


def _section(values: dict) -> str:
    return ", ".join(f"{key} {value}" for key, value in values.items())


def _window(axis: dict) -> str:
    lo, hi = end_labels(axis["lo"], axis["hi"])
    return f"{lo} .. {hi}"


def _audit(report: dict | None) -> str:
    if not report:
        return "-"
    return f"{report['flipped']}/{report['pixels']} flip in {report['against']}"


def format_info(info: dict) -> str:
    """:func:`describe`'s result as a few readable lines: the config as a table, one line per
    level with its windows written with the digits that tell their ends apart."""
    versions = info["versions"]
    cfg = info["config"]
    lines = [f"store     {info['path']}",
             (f"created   {info['created']}  (fractalsweep {versions['fractalsweep']}, "
              f"jax {versions['jax']})"),
             "config"]
    kind = cfg["system"]["kind"]
    if kind != "training":
        cfg = {key: value for key, value in cfg.items() if key not in TRAINING_ONLY}
    cfg = cfg | {"system": {key: value for key, value in cfg["system"].items()
                            if key == "kind" or key in SYSTEM_KEYS[kind]}}
    lines += [f"  {name:<9} {_section(value)}" for name, value in cfg.items()
              if isinstance(value, dict)]
    lines.append("  " + _section({k: v for k, v in cfg.items() if not isinstance(v, dict)}))
    lost = [f"damaged   level {index}: its metadata is lost, {count} finished tile(s) out of "
            f"reach; see 'fractalsweep verify {info['path']}'"
            for index, count in info["lost_levels"].items()]
    if not info["levels"]:
        lines.append("levels    none" + ("" if lost else " yet"))
        return "\n".join(lines + lost)
    header = ("level", "kind", "pixels", "dtype", "tiles", "converged", "diverged",
              "reused", "audit", "decades left", "x window", "y window")
    rows = [[str(lv["level"]), lv["kind"], f"{lv['resolution'][0]}x{lv['resolution'][1]}",
             lv["dtype"] + (" (preview)" if lv["preview"] else ""),
             f"{lv['tiles_done']}/{lv['tiles']}", str(lv["converged"]), str(lv["diverged"]),
             str(lv["reused_pixels"]), _audit(lv["audit"]), f"{lv['decades_left']:.1f}",
             _window(lv["view"]["x"]), _window(lv["view"]["y"])]
            for lv in info["levels"]]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines.append("levels    x: " + info["levels"][0]["view"]["x"]["label"] + ", y: "
                 + info["levels"][0]["view"]["y"]["label"])
    for row in [header, *rows]:
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    for lv in info["levels"]:
        if lv["damaged"]:
            tiles = ", ".join(f"({i}, {j})" for i, j in lv["damaged"])
            lines.append(f"damaged   level {lv['level']}: tile(s) {tiles}; 'fractalsweep verify "
                         f"{info['path']} --repair' unmarks them, 'fractalsweep resume' "
                         "recomputes them")
    return "\n".join(lines + lost)
