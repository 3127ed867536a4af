"""Checking a store end to end, and making what is damaged recomputable.

:func:`verify` reads every chunk of every array (each carries checksums, see
:data:`fractalsweep.store.CODECS`) and checks that every finished tile (one with a marker)
has all its data chunks, no pixel left uncomputed and a provenance record of its own that
agrees with its arrays (their digests) and the stored config, that each level's coordinates
are those of its window, and the root metadata and inputs. It reports one :class:`Problem`
per finding and changes nothing.

:func:`repair` fixes what can be recomputed exactly: a damaged tile loses its marker and its
chunks, so the next ``fractalsweep resume`` (or the command that made its level) computes
exactly those tiles again, bit-identical to a clean run (a pixel's result does not depend on
where or when it is computed); coordinates are rewritten from the window, the levels
group's metadata rewritten, inputs redrawn from the config (only if the redraw equals every
intact stored value), and a level whose creation was cut short is removed. It holds the
store's lock, so it never races a running driver.

:func:`require_intact` is the quick check readers (render, dimension, animate) run first:
a damaged level gives one line naming its tiles instead of a traceback or a silent hole.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import zarr

from . import levels, store
from .config import from_dict
from .errors import ConfigError, StoreError

__all__ = ["Problem", "Report", "damage_note", "damaged_tiles", "repair", "require_intact",
           "verify"]

# "not computed" values the store documents (docs/store.md): in a finished tile, damage
NOT_COMPUTED = {"score": np.nan, "first_nonfinite": -2}


@dataclass(frozen=True)
class Problem:
    """One finding: where (the store, a level, a tile), what, and how it can be repaired.

    ``fix`` is ``"tile"`` (recompute the tile), ``"levels"`` (rewrite the levels group's
    metadata, keeping its levels), ``"coordinates"`` (rewrite them from the window),
    ``"inputs"`` (redraw them from the config), ``"arrays"`` (make a level's missing or
    malformed arrays anew, empty: the tiles that lost data with them are found and
    recomputed next), ``"remove"`` (a level whose creation was cut short), ``"audit"``
    (remove a damaged audit map, which ``fractalsweep audit`` makes again) or None (cannot be
    repaired in place).
    """

    what: str
    level: int | None = None
    tile: tuple[int, int] | None = None
    fix: str | None = None

    def __str__(self) -> str:
        where = "store" if self.level is None else f"level {self.level}"
        if self.tile is not None:
            where += f" tile ({self.tile[0]}, {self.tile[1]})"
        return f"{where}: {self.what}" + ("" if self.fix else " (not repairable in place)")


@dataclass
class Report:
    """What :func:`verify` found and how much it read."""

    path: str
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    levels: int = 0
    tiles: int = 0
    chunks: int = 0
    repaired: list[str] = field(default_factory=list)  # what repair() did, if it ran

    def add(self, what: str, level: int | None = None, tile=None, fix: str | None = None):
        tile = None if tile is None else (int(tile[0]), int(tile[1]))
        self.problems.append(Problem(what, level, tile, fix))

    def __str__(self) -> str:
        return (f"{self.path}: {len(self.problems)} problem(s) in {self.levels} level(s), "
                f"{self.tiles} tiles, {self.chunks} chunks read")


def verify(path: str) -> Report:
    """Check every chunk, marker, provenance record, coordinate and the root metadata.

    Raises
    ------
    StoreError
        If there is no zarr group at ``path`` at all (nor levels with finished tiles).
    """
    report = Report(path)
    store.check_location(path)
    try:
        root = zarr.open_group(path, mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        lost = store.lost_root(path)
        if lost is None:
            raise StoreError(f"{path}: {store.NO_STORE}") from None
        report.add(lost)  # not repairable: the config was in it
        return report
    except PermissionError:  # the machine's refusal, not damage
        raise
    except (OSError, ValueError) as exc:
        report.add(f"root metadata unreadable: {store.one_line(exc)}")
        return report
    if not _looks_like_a_store(root):
        raise StoreError(f"{path}: {store.NOT_A_STORE}")
    holder = store.read_lock(path)
    if holder and store.holder_alive(holder) is not False:
        report.notes.append(f"a run is computing this store now (pid {holder['pid']} on "
                            f"{holder['host']}); tiles it is writing are not finished yet")
    cfg = _check_root(root, report)
    if cfg is None:
        return report
    _check_inputs(root, cfg, report)
    try:
        store.levels_group(root)
    except StoreError as exc:
        report.add(str(exc).split("; see ")[0], fix="levels")
        return report
    keys = store.level_keys(root)
    if "0" not in keys:  # not a problem of what is stored: work not done, as unmarked tiles
        report.notes.append(f"level 0, the job's own window, is not in the store (never made, "
                            f"or removed); 'fractalsweep resume {path}' computes it")
    for key in keys:
        if not key.isdigit():
            report.add(f"levels/{key} is not a level (levels are numbered)")
            continue
        try:
            _check_level(root, int(key), cfg, report)
        except StoreError as exc:
            report.add(str(exc).removeprefix(f"level {key}: ").split("; see ")[0], int(key))
    return report


def _looks_like_a_store(root: zarr.Group) -> bool:
    """Whether ``root`` is a fractalsweep store, however damaged: its metadata, the mark of a
    creation under way, or its inputs or levels (a store whose attributes were lost)."""
    if "fractalsweep" in root.attrs or store.CREATING in root.attrs:
        return True
    try:
        return "levels" in root or "inputs" in root
    except ValueError:  # a member whose metadata is unreadable: something was there
        return True


def _check_root(root: zarr.Group, report: Report):
    meta = root.attrs.get("fractalsweep")
    if meta is None:
        report.add(store.missing_metadata(root, "the root attributes hold no fractalsweep "
                                                "metadata"))
        return None
    for problem in store.root_meta_problems(meta):
        report.add(problem)
    if not isinstance(meta, dict):
        return None
    try:
        return from_dict(meta["config"])
    except (ConfigError, KeyError, TypeError, AttributeError) as exc:
        report.add(f"the stored config does not resolve: {store.one_line(exc)}")
        return None


def _expected_inputs(cfg) -> dict[str, tuple[int, ...] | None]:
    """Input arrays a store of ``cfg`` holds, with their shapes where the config fixes them
    (a fractal's holds none: nothing in it is random)."""
    if cfg.system.kind != "training":
        return {}
    shapes: dict[str, tuple[int, ...] | None] = {
        f"w{i}": tuple(shape) for i, shape in enumerate(cfg.layer_shapes)}
    shapes.update(X=None, Y=None)
    if cfg.batch_size is not None:
        shapes["batch_idx"] = (cfg.training.steps, cfg.batch_size)
    return shapes


def _check_inputs(root: zarr.Group, cfg, report: Report) -> None:
    try:
        group = root.get("inputs")
    except ValueError as exc:
        report.add(f"the inputs group's metadata is unreadable ({store.one_line(exc)})",
                   fix="inputs")
        return
    for name, shape in _expected_inputs(cfg).items():
        try:
            array = None if group is None else group.get(name)
        except ValueError as exc:
            report.add(f"input {name}: metadata unreadable ({store.one_line(exc)})",
                       fix="inputs")
            continue
        if array is None:
            report.add(f"input {name} is missing", fix="inputs")
            continue
        if shape is not None and array.shape != shape:
            report.add(f"input {name} has shape {array.shape}, the config needs {shape}",
                       fix="inputs")
            continue
        _, damaged = store.read_checked(array)
        report.chunks += array.nchunks
        if damaged:
            report.add(f"input {name}: {len(damaged)} chunk(s) unreadable (checksum or "
                       "decoding failed)", fix="inputs")
    if not any(p.fix == "inputs" for p in report.problems):
        _compare_with_redraw(group, cfg, report)


def _compare_with_redraw(group: zarr.Group, cfg, report: Report) -> None:
    """Note inputs that differ from a redraw from the stored config: rewritten with valid
    checksums (a changed config or a copied array), or drawn by a JAX whose random bits
    differ from this one's, which is why it is a note, not a problem."""
    import jax

    from .systems import system_of

    try:
        fresh = system_of(cfg).draw(cfg)
    except ConfigError as exc:  # an image file that is not there any more
        report.notes.append(f"inputs not compared with a redraw: {exc}")
        return
    differ = [name for name, value in fresh.items()
              if name in group and not np.array_equal(group[name][...], value)]
    if differ:
        report.notes.append(f"input(s) {', '.join(differ)} differ from a redraw from the stored "
                            f"config with jax {jax.__version__}: changed after the store was "
                            "made, or drawn by another JAX version")


def _check_level(root: zarr.Group, index: int, cfg, report: Report) -> None:
    group = store.level_group(root, str(index))
    if group is None:
        report.add("a folder without level metadata", index)
        return
    if "view" not in group.attrs:
        report.add("its creation was cut short (no attributes)", index, fix="remove")
        return
    try:
        layout = _layout(group, cfg)
        view = levels.view_of(group, cfg)
        dtype = group.attrs["dtype"]
    except (KeyError, TypeError, ValueError) as exc:
        report.add(f"attributes unreadable: {store.one_line(exc)}", index)
        return
    report.levels += 1
    report.tiles += int(np.prod(layout["tiles"]["shape"]))
    wrong = _unfit(group, layout)
    for name, what in wrong.items():
        report.add(f"array {name} {what}", index, fix="arrays")
    if wrong:
        return
    lvl = store.open_level(root, index)
    if group.attrs.get("integrity", 0) < store.INTEGRITY:
        report.notes.append(f"level {index} was written before chunks carried checksums: "
                            "damage that still decodes cannot be found there")
    damage: dict[tuple[int, int], list[str]] = {}

    def note(tile, what):
        damage.setdefault((int(tile[0]), int(tile[1])), []).append(what)

    markers, bad = store.read_checked(lvl.group["tiles"])
    report.chunks += lvl.group["tiles"].nchunks
    for tile in bad:
        note(tile, "marker unreadable")
    done = {tuple(int(i) for i in ix) for ix in np.argwhere(markers.astype(bool))}
    values = {name: _check_pixels(lvl, name, done, note, report) for name in lvl.pixel_arrays}
    records, bad = store.read_checked(lvl.group["provenance"])
    report.chunks += lvl.group["provenance"].nchunks
    # the steps the config says a tile was computed with (a fractal's iteration limit, which
    # its records give as steps from 0.6.2 on: before, training.steps)
    training = cfg.system.kind == "training"
    steps = cfg.training.steps if training else cfg.system.max_iter
    changed: dict[object, list] = {}
    for tile in sorted(done):
        record = None if tile in bad else store.parse_provenance(records[tile])
        if tile in bad:
            note(tile, "provenance unreadable")
        elif record is None:
            note(tile, "provenance missing or not a record")
        elif tile not in damage:
            region = lvl.tiling.slices(tile)
            what = _misplaced(record, {"level": index, "tile": list(tile), "dtype": dtype},
                              {name: array[region] for name, array in values.items()})
            if what:
                note(tile, what)
            if ("steps" in record and record["steps"] != steps
                    and (training or _release(record.get("fractalsweep")) >= (0, 6, 2))):
                changed.setdefault(record["steps"], []).append(tile)
    for theirs, tiles in changed.items():
        named = ", ".join(f"({i}, {j})" for i, j in tiles[:8]) + (", ..." if len(tiles) > 8
                                                                   else "")
        report.add(f"{len(tiles)} finished tile(s) were computed with steps {theirs!r}, the "
                   f"stored config says {steps!r}: {named}; the config changed after them, or "
                   "they were copied from another store (which is right is yours to say: a "
                   "resume computes by the config)", index)
    for tile, whats in sorted(damage.items()):
        report.add("; ".join(whats), index, tile, fix="tile")
    if "audit" in lvl.group:  # derived, not a tile's: damage removes it to be audited again
        _, bad = store.read_checked(lvl.group["audit"])
        report.chunks += lvl.group["audit"].nchunks
        if bad:
            report.add(f"audit map unreadable in tile(s) {', '.join(map(str, bad))}", index,
                       fix="audit")
    expected = store.coordinate_arrays(view, lvl.group.attrs["resolution"], dtype)
    for name, want in expected.items():  # x_lo and y_lo of double-double levels too
        values, bad = store.read_checked(lvl.group[name])
        report.chunks += lvl.group[name].nchunks
        if bad:
            report.add(f"{name} coordinates unreadable (checksum or decoding failed)", index,
                       fix="coordinates")
        elif values.view(np.uint64).tolist() != want.view(np.uint64).tolist():
            report.add(f"{name} coordinates differ from the level's window", index,
                       fix="coordinates")


def _layout(group: zarr.Group, cfg) -> dict[str, dict]:
    """The arrays the level's attributes call for (:func:`fractalsweep.store.level_layout`):
    the per-pixel arrays it lists, not those a newer version would add."""
    attrs = group.attrs
    layout = store.level_layout(dataclasses.replace(cfg, dtype=attrs["dtype"]),
                                attrs["resolution"], attrs["tile"], attrs["dtype"])
    pixels = {*group.attrs.get("arrays", store.LEGACY_ARRAYS), "reused"}
    return {name: kw for name, kw in layout.items()
            if name in pixels or kw["dimension_names"] != ("y", "x")}


def _unfit(group: zarr.Group, layout: dict[str, dict]) -> dict[str, str]:
    """The level's arrays that are missing, unreadable or of another shape, with what is
    wrong with each."""
    wrong = {}
    for name, want in layout.items():
        try:
            array = group[name]
        except PermissionError:  # not damage: a repair would make the array anew, empty
            raise
        except (KeyError, ValueError, OSError) as exc:
            wrong[name] = f"is missing or unreadable ({store.one_line(exc)})"
            continue
        if array.shape != want["shape"] or array.chunks != want["chunks"]:
            wrong[name] = (f"has shape {array.shape} in chunks {array.chunks}; the level needs "
                           f"{want['shape']} in {want['chunks']}")
    return wrong


def _check_pixels(lvl: store.LevelGroup, name: str, done: set, note,
                  report: Report) -> np.ndarray:
    """Note the damage in one per-pixel array; returns its values as read."""
    report.chunks += lvl.group[name].nchunks
    values, damage = _array_damage(lvl, name, done)
    for tile, what in damage.items():
        note(tile, what)
    return values


def _release(version) -> tuple[int, ...]:
    """A fractalsweep version as numbers, ``(0,)`` if it is not one (a source tree's).

    >>> _release("0.6.2"), _release("0+unknown"), _release(None)
    ((0, 6, 2), (0,), (0,))
    """
    parts = str(version).split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else (0,)


def _misplaced(record: dict, expected: dict, tile: dict[str, np.ndarray]) -> str | None:
    """What a finished tile's provenance record says against where it is stored and against
    the tile's arrays as read (``tile``): a chunk or a record copied from another tile, or
    rewritten; None if nothing. Records from 0.7.0 on hold each array's digest, older ones
    the score's converged count, minimum and maximum; fields a record lacks are not
    compared."""
    for key, want in expected.items():
        if key in record and record[key] != want:
            return f"provenance says {key} {record[key]!r}, where this tile has {want!r}"
    for name, digest in record.get("digests", {}).items():
        if name in tile and store.tile_digest(tile[name]) != digest:
            return f"{name} is not what the tile wrote (its provenance's digest differs)"
    score = tile["score"]
    stats = {"converged": int((score < 0).sum()), "min": float(score.min()),
             "max": float(score.max())}
    for key, got in stats.items():
        if key in record and record[key] != got:
            return (f"score differs from its provenance ({key} {got!r} stored, "
                    f"{record[key]!r} computed)")
    return None


def _array_damage(lvl: store.LevelGroup, name: str, done: set,
                  read: bool = True) -> tuple[np.ndarray | None, dict[tuple[int, int], str]]:
    """A per-pixel array's values, and what is wrong in which tile: unreadable chunks
    anywhere; in finished tiles (``done``), missing chunks and pixels not computed. Without
    ``read``, only missing chunks are looked for (nothing is read but the listing)."""
    array = lvl.group[name]
    values, bad = store.read_checked(array) if read else (None, [])
    damage = {tile: f"{name} chunk unreadable (checksum or decoding failed)" for tile in bad}
    # a finished tile wrote every chunk of its arrays ("reused" too, since integrity 1); the
    # audit map leaves the chunks of tiles it did not sample unwritten (fill: not audited)
    required = name in lvl.arrays or (name in lvl.pixel_arrays
                                      and lvl.group.attrs.get("integrity", 0) >= 1)
    present = store.chunks_on_disk(array) if required else None
    for tile in sorted(done - set(bad)):
        if present is not None and tile not in present:
            damage[tile] = f"{name} chunk missing"
        elif (read and name in NOT_COMPUTED
              and _uncomputed(values[lvl.tiling.slices(tile)], name).any()):
            damage[tile] = f"{name} has pixels not computed"
    return values, damage


def _uncomputed(values: np.ndarray, name: str) -> np.ndarray:
    sentinel = NOT_COMPUTED[name]
    return np.isnan(values) if np.isnan(sentinel) else values == sentinel


def repair(path: str, problems: list[Problem]) -> list[str]:
    """Make every repairable problem recomputable; returns one line per action taken.

    Holds the store's lock (a running driver is refused). Damaged tiles lose their marker
    first, then their chunks and provenance, and their ``reused`` pixels are cleared, so the
    whole tile is computed again; ``reused_pixels`` is updated to what remains copied.

    Raises
    ------
    StoreError
        If the root metadata is damaged (an edited config, another format): every repair is
        made from the stored config, so none is made from one that may not be the store's.
    """
    fixable = [p for p in problems if p.fix]
    if not fixable:
        return []
    done: list[str] = []
    with store.driver_lock(path, "a repair"):
        root = zarr.open_group(path, mode="r+")
        if damaged := store.root_meta_problems(root.attrs["fractalsweep"]):
            raise StoreError(f"{path}: nothing repaired: its root metadata is damaged "
                             f"({damaged[0]}), and every repair is made from the config it "
                             "holds")
        cfg = from_dict(root.attrs["fractalsweep"]["config"])
        if any(p.fix == "levels" for p in fixable):
            _rewrite_group_metadata(root, "levels")
            done.append("the levels group's metadata rewritten (its levels are kept)")
        if any(p.fix == "inputs" for p in fixable):
            _redraw_inputs(root, cfg)
            done.append("inputs redrawn from the config (bit-identical to the intact values)")
        for index in sorted({p.level for p in fixable if p.fix == "remove"}):
            del root["levels"][str(index)]
            done.append(f"level {index}: removed (its creation was cut short)")
        for index in sorted({p.level for p in fixable if p.fix == "arrays"}):
            group = root["levels"][str(index)]
            layout = _layout(group, cfg)
            wrong = _unfit(group, layout)
            for name in wrong:
                store.new_array(group, name, overwrite=True, **layout[name])
            if wrong:
                done.append(f"level {index}: array(s) {', '.join(wrong)} made anew, empty")
            if {"x", "y", "x_lo", "y_lo"} & set(wrong):
                _write_coordinates(store.open_level(root, index), cfg)
                done.append(f"level {index}: coordinates written from the window")
        for index in sorted({p.level for p in fixable if p.fix == "audit"}):
            group = root["levels"][str(index)]
            del group["audit"]
            group.attrs.pop("audit", None)
            done.append(f"level {index}: audit map removed; 'fractalsweep audit' makes it again")
        for index in sorted({p.level for p in fixable if p.fix == "coordinates"}):
            _write_coordinates(store.open_level(root, index), cfg)
            done.append(f"level {index}: coordinates rewritten from the window")
        for index in sorted({p.level for p in fixable if p.fix == "tile"}):
            tiles = sorted({p.tile for p in fixable if p.fix == "tile" and p.level == index})
            _reset_tiles(store.open_level(root, index), tiles)
            done.append(f"level {index}: {len(tiles)} tile(s) unmarked for recomputation: "
                        + ", ".join(f"({i}, {j})" for i, j in tiles))
    return done


def _write_coordinates(lvl: store.LevelGroup, cfg) -> None:
    attrs = lvl.group.attrs
    store.write_coordinates(lvl.group, levels.view_of(lvl.group, cfg), attrs["resolution"],
                            attrs["dtype"])


def _reset_tiles(lvl: store.LevelGroup, tiles: list[tuple[int, int]]) -> None:
    for tile in tiles:
        lvl.group["tiles"][tile] = 0  # first: from here on the tile is unfinished
        sy, sx = lvl.tiling.slices(tile)
        for name in lvl.pixel_arrays:  # fill values: the damaged chunks are deleted
            lvl.group[name][sy, sx] = lvl.group[name].fill_value
        lvl.group["provenance"][tile] = ""
    if lvl.group.attrs.get("reuse_from") is not None:
        lvl.group.attrs["reused_pixels"] = int(store.read_checked(lvl.group["reused"])[0].sum())


def _rewrite_group_metadata(root: zarr.Group, name: str) -> None:
    """Write group ``name``'s metadata anew (neither holds attributes), keeping what is in
    it: the damaged or deleted ``zarr.json`` alone is replaced."""
    from zarr.core.sync import sync

    key = f"{root.path}/{name}/zarr.json" if root.path else f"{name}/zarr.json"
    sync(root.store.delete(key))
    zarr.open_group(root.store, path=f"{root.path}/{name}" if root.path else name, mode="a")


def _redraw_inputs(root: zarr.Group, cfg) -> None:
    from .streams import draw

    try:
        group = root.require_group("inputs")
    except ValueError:  # its metadata unreadable: rewritten, the arrays in it kept
        _rewrite_group_metadata(root, "inputs")
        group = root["inputs"]
    fresh = draw(cfg)
    for name, value in fresh.items():
        try:
            group.get(name)
        except ValueError:  # the array's metadata unreadable: its data cannot be read either
            del group[name]
        if name in group and group[name].shape == value.shape:
            stored, bad = store.read_checked(group[name])
            intact = np.ones(value.shape, dtype=bool)
            for chunk in bad:
                intact[tuple(slice(i * c, (i + 1) * c)
                             for i, c in zip(chunk, group[name].chunks))] = False
            if not np.array_equal(stored[intact], value[intact]):
                raise StoreError(f"input {name}: a redraw differs from the intact stored values "
                                 "(another jax?); the inputs cannot be repaired here")
            group[name].with_config(store.WRITE_EVERY_CHUNK)[...] = value
            continue
        if name in group:
            del group[name]
        store.new_array(group, name, data=value)


def damaged_tiles(lvl: store.LevelGroup, names=("score",), listed=(),
                  checked=()) -> tuple[dict, list]:
    """A level's ``names`` arrays as read, and the tiles whose data a reader cannot trust.

    A tile is damaged when its marker or a chunk of those arrays cannot be read, or when it
    is marked finished yet a chunk of theirs is missing (deleted under its marker) or holds
    pixels not computed. The arrays ``checked`` are read for damage as well, one at a time,
    and not returned; of those ``listed``, only missing chunks are looked for. The pixels of
    tiles not finished read as not computed (the array's fill value), whatever a tile cut
    short between its data and its marker wrote.
    """
    markers, bad = store.read_checked(lvl.group["tiles"])
    done = {(int(i), int(j)) for i, j in np.argwhere(markers.astype(bool))}
    unfinished = ~lvl.finished(markers)
    damaged, values = set(bad), {}
    for name in dict.fromkeys([*names, *checked, *listed]):
        value, damage = _array_damage(lvl, name, done, read=name in names or name in checked)
        damaged.update(damage)
        if name in names:
            value[unfinished] = lvl.group[name].fill_value
            values[name] = value
    return values, sorted((int(i), int(j)) for i, j in damaged)


def damage_note(path: str, damaged: list[tuple[int, ...]]) -> str:
    """Which tiles are damaged, and the commands that recompute them."""
    listed = ", ".join(f"({i}, {j})" for i, j in damaged[:8])
    more = f" and {len(damaged) - 8} more" if len(damaged) > 8 else ""
    return (f"damaged tile(s) {listed}{more}; 'fractalsweep verify {path} --repair' unmarks "
            f"them and 'fractalsweep resume {path}' recomputes them")


def require_intact(path: str, lvl: store.LevelGroup, names=("score",), listed=(),
                   checked=()) -> dict:
    """``names`` arrays of a level for a reader (per-pixel arrays, the coordinates ``x``,
    ``y`` and a double-double level's ``x_lo``, ``y_lo``), or a one-line error naming the
    damaged tiles and how to repair them (the arrays ``checked`` read for damage too, those
    ``listed`` checked for missing chunks only, as :func:`damaged_tiles` does)."""
    coordinates = [name for name in names if name in ("x", "y", "x_lo", "y_lo")]
    values, damaged = damaged_tiles(lvl, [name for name in names if name not in coordinates],
                                    listed, checked)
    where = f"{path} level {lvl.group.basename}"
    if damaged:
        raise StoreError(f"{where}: {damage_note(path, damaged)}")
    for name in coordinates:
        values[name], bad = store.read_checked(lvl.group[name])
        if bad:
            raise StoreError(f"{where}: {name} coordinates unreadable; 'fractalsweep verify "
                             f"{path} --repair' rewrites them from the window")
    return values
