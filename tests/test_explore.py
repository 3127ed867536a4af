"""The explorer, headless: synthetic mouse and key events on its own Agg canvas (no pyplot,
no display), over a real store."""

import shutil
import time
from decimal import Decimal

import numpy as np
import pytest
import zarr
from matplotlib.backend_bases import KeyEvent, MouseEvent

import fractalsweep as fs
from fractalsweep import Execution, levels, store, views
from fractalsweep.colour import to_rgb
from fractalsweep.config import resolve
from fractalsweep.explore import Explorer
from fractalsweep.precision import precision_check
from fractalsweep.store import LevelSpec
from fractalsweep.tile import compute_tile
from fractalsweep.views import box_to_view, pixel_value

TILE = 8
SYNC = Execution(scheduler="sync", tile=TILE)
JOB = {"training": {"steps": 20}, "x": {"log10": [-1, 4]}, "y": {"log10": [-1, 4]},
       "grid": {"resolution": 16}}


@pytest.fixture(scope="module")
def computed(tmp_path_factory):
    path = tmp_path_factory.mktemp("explore") / "base.zarr"
    fs.run(resolve(JOB), str(path), execution=SYNC, progress=False)
    return path


@pytest.fixture
def path(computed, tmp_path):
    """A fresh copy of the computed store for each test (tests add levels)."""
    copy = tmp_path / "s.zarr"
    shutil.copytree(computed, copy)
    return str(copy)


@pytest.fixture
def explorer(path):
    explorer = Explorer(path, execution=SYNC)
    explorer.figure.canvas.draw()  # final transforms (the image's aspect is set on drawing)
    yield explorer
    explorer.close()


def _score(path, level):
    return store.open_level(store.open_root(path), level).group["score"][:]


def _shown(explorer):
    return np.asarray(explorer.image.get_array())


def _mouse(explorer, name, xy):
    canvas = explorer.figure.canvas
    x, y = explorer.ax.transData.transform(xy)
    canvas.callbacks.process(name, MouseEvent(name, canvas, x, y, button=1))


def _drag(explorer, start, end):
    _mouse(explorer, "button_press_event", start)
    _mouse(explorer, "motion_notify_event", ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2))
    _mouse(explorer, "motion_notify_event", end)
    _mouse(explorer, "button_release_event", end)


def _key(explorer, key):
    canvas = explorer.figure.canvas
    canvas.callbacks.process("key_press_event", KeyEvent("key_press_event", canvas, key))


def _levels(path):
    return store.level_indices(store.open_root(path))


def test_pixels_land_where_their_coordinates_say(explorer, path):
    """Score row 0 is drawn at the bottom: the canvas pixel at data (i, j) is pixel (i, j)."""
    score = _score(path, 0)
    expected = to_rgb(score, "paper")[::-1]  # back to rows bottom first, as the score
    assert not np.array_equal(expected, expected[::-1])  # an up-down flip would show
    canvas = explorer.figure.canvas
    canvas.draw()
    buffer = np.asarray(canvas.buffer_rgba())
    for j in range(score.shape[0]):
        for i in range(score.shape[1]):
            x, y = explorer.ax.transData.transform((i, j))
            # the buffer's rows run from the top, display y from the bottom
            pixel = buffer[int(buffer.shape[0] - y), int(x), :3]
            np.testing.assert_array_equal(pixel, expected[j, i], err_msg=f"pixel {(i, j)}")


def test_drag_zooms_into_the_box_and_draws_the_new_level(explorer, path):
    assert explorer.level == 0 and "level 0" in explorer.status.get_text()
    start, end = (3.2, 4.0), (10.6, 12.4)
    _drag(explorer, start, end)
    explorer.wait()
    assert _levels(path) == [0, 1] and explorer.level == 1

    # the window is the box: pixel centres are the stored coordinates, log-interpolated
    level0 = store.open_level(store.open_root(path), 0).group
    level1 = store.open_level(store.open_root(path), 1)
    view = level1.group.attrs["view"]
    for axis, ends in (("x", (start[0], end[0])), ("y", (start[1], end[1]))):
        coords = np.log10(level0[axis][:])
        spacing = coords[1] - coords[0]
        for bound, at in zip(("lo", "hi"), ends):
            expected = np.interp(at, np.arange(coords.size), coords)
            assert abs(np.log10(float(view[axis][bound])) - expected) < spacing, (axis, bound)
    assert level1.done.all() and view["x"]["scale"] == "log"

    np.testing.assert_array_equal(_shown(explorer)[..., :3], to_rgb(_score(path, 1), "paper"))
    assert (_shown(explorer)[..., 3] == 255).all()
    status = explorer.status.get_text()
    assert "level 1" in status and "decades left" in status and "done" in status


def test_a_click_or_a_tiny_drag_zooms_nowhere(explorer, path):
    _drag(explorer, (5.0, 5.0), (5.0, 5.0))
    x, y = explorer.ax.transData.transform((5.0, 5.0))
    end = explorer.ax.transData.inverted().transform((x + 1, y + 40))  # 1 screen pixel wide
    _drag(explorer, (5.0, 5.0), tuple(end))
    explorer.wait()
    assert _levels(path) == [0] and explorer.level == 0


def test_keys_step_through_levels_and_change_the_colouring(explorer, path):
    explorer.zoom(box_to_view(explorer.view, explorer.resolution, (2, 9), (2, 9)))
    explorer.wait()
    assert explorer.level == 1
    _key(explorer, "left")
    assert explorer.level == 0 and "level 0" in explorer.status.get_text()
    np.testing.assert_array_equal(_shown(explorer)[..., :3], to_rgb(_score(path, 0), "paper"))
    _key(explorer, "left")  # no level before 0: stays
    assert explorer.level == 0
    _key(explorer, "n")
    assert explorer.level == 1
    _key(explorer, "b")
    _key(explorer, "d")
    assert explorer.level == levels.deepest(path) == 1

    _key(explorer, "c")
    assert explorer.cmap == "classes" and "classes" in explorer.status.get_text()
    np.testing.assert_array_equal(_shown(explorer)[..., :3], to_rgb(_score(path, 1), "classes"))
    before, text = _shown(explorer).copy(), explorer.status.get_text()
    _key(explorer, "z")
    np.testing.assert_array_equal(_shown(explorer), before)
    assert explorer.status.get_text() == text and explorer.level == 1
    for _ in range(2):
        _key(explorer, "c")
    assert explorer.cmap == "paper"


def test_stepping_away_from_a_computing_level_stays_there(explorer, path):
    index = explorer.zoom(box_to_view(explorer.view, explorer.resolution, (2, 9), (2, 9)))
    assert index == 1 and "computing level 1" in explorer.status.get_text()
    assert explorer.zoom(explorer.view) is None  # one level at a time
    status = explorer.status.get_text()
    assert "computing level 1" in status and "one zoom at a time" in status
    _key(explorer, "left")  # the window is on level 0 until level 1 lands: stay there
    explorer.wait()
    assert explorer.level == 0 and "level 1 done" in explorer.status.get_text()
    _key(explorer, "right")
    assert explorer.level == 1


def test_polling_like_the_timer_draws_the_level_as_it_lands(explorer, path):
    explorer.zoom(box_to_view(explorer.view, explorer.resolution, (2, 9), (2, 9)))
    job = explorer._job
    while explorer._job is not None:  # an Agg canvas's timer never fires: be the timer
        explorer._poll()
        assert explorer.level in (0, 1) and job.done <= 4
        time.sleep(0.05)
    assert explorer.level == 1 and "level 1 done" in explorer.status.get_text()
    np.testing.assert_array_equal(_shown(explorer)[..., :3], to_rgb(_score(path, 1), "paper"))


def test_a_level_still_being_made_is_skipped(explorer, path):
    # a driver creates the group first and writes the level's attributes last
    store.open_root(path, mode="r+")["levels"].create_group("1")
    for key in ("right", "d"):
        _key(explorer, key)
        assert explorer.level == 0


def test_a_refused_zoom_says_why_and_adds_no_level(explorer, path):
    # 1e-13 relative width: distinct at the level's 16 pixels, not at 4096 in float64
    view = views.box_view(explorer.view, x=("13", "13.0000000000013"), y=("13", "13.0000000000013"))
    assert precision_check(view, 16)["ok"]
    assert explorer.zoom(view, resolution=(4096, 4096)) is None
    status = explorer.status.get_text()
    assert "refused" in status and "float64" in status and "f: force" in status
    assert "--force" not in status  # the command line's remedy, not the window's
    assert _levels(path) == [0] and explorer.level == 0
    _key(explorer, "f")
    assert explorer.force and "FORCE" in explorer.status.get_text()
    _key(explorer, "f")
    assert not explorer.force and "FORCE" not in explorer.status.get_text()


def test_a_failing_zoom_shows_in_the_status_line(explorer, path):
    with store.driver_lock(path):  # another driver computes the store: the zoom is refused
        explorer.zoom(box_to_view(explorer.view, explorer.resolution, (2, 9), (2, 9)))
        explorer.wait()
    status = explorer.status.get_text()
    assert "level 1 failed" in status and "another run" in status
    assert explorer.level == 0
    explorer.zoom(box_to_view(explorer.view, explorer.resolution, (2, 9), (2, 9)))
    explorer.wait()
    assert explorer.level == 1 and "failed" not in explorer.status.get_text()


def test_a_partly_computed_level_is_drawn_with_its_missing_tiles_clear(explorer, path):
    cfg = store.config_of(path)
    view = box_to_view(explorer.view, explorer.resolution, (2, 9), (2, 9))
    with store.driver_lock(path):
        spec = LevelSpec(view, cfg.grid.resolution, cfg.dtype, kind="zoom", tile=TILE)
        store.ensure_level(store.open_root(path, mode="r+"), 1, cfg, spec)
    explorer.show(1)  # no tile yet: an empty picture, not an error
    assert (_shown(explorer)[..., 3] == 0).all() and "tiles 0/4" in explorer.status.get_text()

    compute_tile(path, 1, (0, 0), "test")  # rows 0..7 (the bottom), columns 0..7 (the left)
    _key(explorer, "r")
    score = _score(path, 1)
    shown = _shown(explorer)[::-1]  # rows bottom first, as the score
    assert (shown[:8, :8, 3] == 255).all() and (shown[..., 3].sum() == 255 * 64)
    np.testing.assert_array_equal(shown[:8, :8, :3], to_rgb(score, "paper")[::-1][:8, :8])
    assert "tiles 1/4" in explorer.status.get_text()
    explorer.figure.canvas.draw()


def test_damaged_and_unmarked_tiles_are_left_clear_and_named(path):
    """As in the browser page: a tile whose data landed but whose marker did not (a tile cut
    short) is not drawn, and a damaged chunk is named in the status line (it raised)."""
    with open(f"{path}/levels/0/score/c/0/0", "r+b") as chunk:
        chunk.truncate(5)
    zarr.open_group(path, mode="r+")["levels/0/tiles"][1, 1] = 0
    explorer = Explorer(path, execution=SYNC)
    try:
        alpha = _shown(explorer)[::-1][..., 3]  # rows bottom first, as the score
        assert (alpha[:8, :8] == 0).all() and (alpha[8:, 8:] == 0).all()
        assert (alpha[:8, 8:] == 255).all() and (alpha[8:, :8] == 255).all()
        assert f"level 0: damaged tile(s) (0, 0); 'fractalsweep verify {path}" in (
            explorer.status.get_text())
    finally:
        explorer.close()


def test_pixel_value_keeps_whole_pixels_exact_and_bounds_short():
    axis = resolve(JOB).x
    assert [pixel_value(axis, 6, p) for p in (0, 1, 5)] == [Decimal("0.1"), 1, 10000]
    deep = views.box_view({"x": axis, "y": axis}, x=("13.29976231", "13.29978604"))["x"]
    value = pixel_value(deep, 4097, 2048.37)
    step = (13.29978604 - 13.29976231) / 4096
    # so narrow a window is all but linear in the value
    assert abs(float(value) - (13.29976231 + 2048.37 * step)) < step / 100
    # a thousandth of a pixel is 5.8e-12: 12 decimals, no more
    assert value.as_tuple().exponent == -12
