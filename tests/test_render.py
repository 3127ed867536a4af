import itertools
from decimal import Decimal, localcontext

import matplotlib
import matplotlib.image
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fractalsweep.colour import (
    BOUNDARY,
    CLASS_COLOURS,
    CONVERGED,
    DIVERGED,
    classes,
    equalize,
    to_rgb,
)
from fractalsweep.render import axis_labels, end_labels, render_png


def test_equalize_hand_computed():
    # converged -3 (slowest), -2, -1 (fastest); diverged 2 (fastest blow-up), 5, 8 (slowest)
    score = np.array([[-3.0, -1.0, 2.0], [5.0, -2.0, 8.0]])
    expected = np.array([[1.0, 0.25, -0.25], [-0.625, 0.625, -1.0]])
    out = equalize(score)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, expected)


def test_equalize_sign_convention_and_gap():
    rng = np.random.default_rng(0)
    score = rng.normal(size=(40, 50)) * 10.0 ** rng.uniform(-3, 6, size=(40, 50))
    out = equalize(score)
    assert np.all(out[score < 0] >= 0.25)  # converged -> positive after negation
    assert np.all(out[score >= 0] <= -0.25)  # diverged -> negative
    assert out.min() == -1.0 and out.max() == 1.0


def test_equalize_ties_share_mean_rank():
    # converged -2 has rank 0, the two -1 share mean rank 1.5 of 0..2 -> 0.75
    out = equalize(np.array([-1.0, -1.0, -2.0]))
    np.testing.assert_allclose(out, [0.4375, 0.4375, 1.0])


def test_equalize_one_class_and_single_pixel():
    np.testing.assert_allclose(equalize(np.array([1.0, 3.0, 2.0])), [-0.25, -1.0, -0.625])
    # a lone pixel of a class sits mid-band
    np.testing.assert_allclose(equalize(np.array([-4.0, 1.0, 2.0])), [0.625, -0.25, -1.0])


def test_equalize_zero_nan_inf():
    out = equalize(np.array([0.0, np.nan, np.inf, -np.inf, -1.0]))
    # 0 and +inf are diverged (ranked among themselves); NaN is fastest blow-up
    np.testing.assert_allclose(out, [-0.25, -0.25, -1.0, 1.0, 0.25])


def test_equalize_reference_mapping():
    reference = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])
    score = np.array([-2.5, -10.0, 2.5, 0.5, 7.0, -1.0])
    out = equalize(score, reference=reference)
    # ranks among the reference's own class, interpolated and clamped
    np.testing.assert_allclose(out, [0.8125, 1.0, -0.8125, -0.25, -1.0, 0.25])
    np.testing.assert_allclose(equalize(reference, reference=reference), equalize(reference))


def test_equalize_reference_missing_class_falls_back_to_image():
    out = equalize(np.array([-1.0, -2.0, 4.0]), reference=np.array([-5.0, -1.0]))
    np.testing.assert_allclose(out, [0.25, 0.4375, -0.625])


def test_classes_hand_made():
    score = np.array(
        [
            [-1.0, -1.0, -1.0, -1.0],
            [-1.0, -1.0, 1.0, 1.0],
            [-1.0, -1.0, -1.0, 1.0],
        ]
    )
    c, d, b = CONVERGED, DIVERGED, BOUNDARY
    expected = np.array(
        [
            [c, c, b, b],
            [c, b, b, b],
            [c, c, b, b],
        ]
    )
    out = classes(score)
    assert out.dtype == np.int8
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(classes(np.ones((2, 3))), np.full((2, 3), d))


def test_to_rgb_shape_dtype_and_flip():
    score = np.full((3, 4), 5.0)
    score[0] = -5.0  # row 0 = bottom of the picture = last image row
    rgb = to_rgb(score, "classes")
    assert rgb.shape == (3, 4, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[-1], np.broadcast_to(CLASS_COLOURS[BOUNDARY], (4, 3)))
    np.testing.assert_array_equal(rgb[0], np.broadcast_to(CLASS_COLOURS[DIVERGED], (4, 3)))

    score = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
    rgb = to_rgb(score)
    assert rgb.shape == (3, 4, 3) and rgb.dtype == np.uint8
    spectral = matplotlib.colormaps["Spectral"]
    expected = spectral((equalize(score) + 1) / 2, bytes=True)[..., :3]
    np.testing.assert_array_equal(rgb, expected[::-1])


def test_to_rgb_paper_colours():
    # slow converged -> dark blue, fast converged -> light green,
    # fast blow-up -> orange, slow blow-up (next to the boundary) -> dark red
    slow_conv, fast_conv, fast_div, slow_div = to_rgb(np.array([[-9.0, -1.0, 1.0, 9.0]]))[0].astype(int)
    assert slow_conv[2] > slow_conv[0] and slow_conv[2] > slow_conv[1]  # blue dominant
    assert fast_conv[1] > fast_conv[0] and fast_conv[1] > fast_conv[2]  # green dominant
    assert slow_div[0] > 2 * slow_div[1] and slow_div[0] < 200  # dark red
    assert fast_div[0] > 240 and 150 < fast_div[1] < 230  # orange


def test_to_rgb_other_colormap():
    score = np.array([[-2.0, -1.0], [1.0, 2.0]])
    viridis = matplotlib.colormaps["viridis"]
    expected = viridis((equalize(score) + 1) / 2, bytes=True)[..., :3][::-1]
    np.testing.assert_array_equal(to_rgb(score, "viridis"), expected)


def test_to_rgb_unknown_cmap():
    with pytest.raises(ValueError, match="'no-such-map'") as info:
        to_rgb(np.zeros((2, 2)), cmap="no-such-map")
    message = str(info.value)
    assert "'paper'" in message and "'classes'" in message and "matplotlib colormap" in message


def test_end_labels_deep_zoom():
    lo, hi = end_labels(13.29976231, 13.29978604)
    assert lo != hi
    assert (lo, hi) == ("13.29976", "13.29979")


def test_end_labels_wide_and_minimum_digits():
    assert end_labels(1e-3, 1e6) == ("0.001", "1e6")
    assert end_labels(2.0, 2.0) == ("2", "2")
    assert end_labels(1.23456, 9.87654) == ("1.23", "9.88")
    # ends 3.1e-12 apart differ at 11 digits ("...547", "...548") but each would be up to
    # 5e-12 off: a label's last digit is no coarser than the window's width
    assert end_labels(0.267398835471957, 0.267398835475071) == ("0.267398835472",
                                                                "0.267398835475")
    assert end_labels(1.2349999, 1.2350001) == ("1.2349999", "1.2350001")  # not 1.23, 1.24


WINDOWS = st.tuples(st.decimals(-1000, 1000, places=6), st.integers(-33, 2),
                    st.integers(1, 99), st.integers(2, 6))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(WINDOWS)
def test_axis_labels_locate_every_value(window):
    """Read back as numbers (the name's centre plus an offset, where it has one), the labels
    of a row of values are each within half the smallest gap of their value."""
    start, exponent, step, count = window
    with localcontext(prec=60):
        step = Decimal(step).scaleb(exponent)
        values = [start + k * step for k in range(count)]
    name, labels = axis_labels("lr", values)  # in Python's 28-digit context: not its own
    with localcontext(prec=60):
        centre = Decimal(0)
        if name != "lr":
            assert name.startswith(("lr - ", "lr + "))
            centre = Decimal(name[5:]) * (1 if name[3] == "-" else -1)
        assert len(labels) == count and all(len(label) <= 25 for label in labels)
        for value, label in zip(values, labels):
            assert abs(centre + Decimal(label) - value) <= step / 2, (name, labels)
    if name == "lr":  # labelled as values: 12 significant digits at most
        assert all(len(label.split("e")[0].lstrip("-").replace(".", "").strip("0")) <= 12
                   for label in labels), labels


def test_axis_labels_of_a_deep_window():
    lo, hi = Decimal("12.345678901234567"), Decimal("12.34567890123456701")
    assert axis_labels("lr_in", [lo, hi]) == ("lr_in - 12.345678901234567005", ["-5e-18", "+5e-18"])
    assert axis_labels("w", [Decimal("-30.5") + k * Decimal("1e-22") for k in range(3)]) == \
        ("w + 30.4999999999999999999999", ["-1e-22", "0", "+1e-22"])
    assert axis_labels("lr", [0.5, 0.75, 1.0]) == ("lr", ["0.5", "0.75", "1"])


@pytest.mark.parametrize(("shape", "min_px", "max_px"), [((30, 20), 400, 700), ((1200, 1200), 1000, 1400)])
def test_render_png_writes_image(tmp_path, shape, min_px, max_px):
    rows, cols = shape
    x = np.logspace(-3, 6, cols)
    y = np.logspace(1, 2, rows)
    yy, xx = np.meshgrid(np.linspace(-1, 1, rows), np.linspace(-1, 1, cols), indexing="ij")
    score = xx + 0.3 * np.sin(5 * yy)
    out = render_png(score, x, y, tmp_path / "level.png", xlabel="lr 0", ylabel="lr 1", title="t")
    assert out == tmp_path / "level.png"
    image = matplotlib.image.imread(out)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert min_px <= max(image.shape[:2]) <= max_px
    assert image.std() > 0.05  # not a blank figure


def test_render_png_shape_mismatch(tmp_path):
    with pytest.raises(ValueError, match="does not match"):
        render_png(np.zeros((3, 4)), np.arange(3), np.arange(3), tmp_path / "x.png", xlabel="a", ylabel="b")


def test_classes_draw_no_boundary_against_pixels_not_computed():
    score = np.array([[-1.0, -1.0, np.nan], [-1.0, -1.0, np.nan], [-1.0, 1.0, 1.0]])
    out = classes(score)
    assert out[0, 1] == CONVERGED and out[1, 1] == BOUNDARY  # the sign change below it
    assert out[2, 0] == BOUNDARY and out[2, 1] == BOUNDARY


def test_a_ladder_sheet_labels_deep_windows_inside_their_thumbnails():
    """The sheet wrote both ends of both axes in full on one line: at double-double depth,
    four 34-digit numbers ran across the neighbouring thumbnails; and a row's titles sat on
    the window lines of the row above."""
    from types import SimpleNamespace

    from fractalsweep.render import ladder_figure

    lo = Decimal("271.8281828459045235360287471352662497757")
    levels = []
    for index, digits in enumerate((3, 17, 25, 34, 3, 4)):
        with localcontext(prec=60):
            hi = str(lo + Decimal(3).scaleb(lo.adjusted() - digits + 1))
        axis = {"lo": str(lo), "hi": hi}
        levels.append(SimpleNamespace(index=index, score=np.zeros((8, 8)),
                                      attrs={"view": {"x": axis, "y": axis}}))
    fig = ladder_figure(levels, columns=3)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [text.get_window_extent(renderer) for ax in fig.axes
             for text in (ax.xaxis.label, ax.title)]
    assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2)), boxes
    assert all(fig.bbox.contains(b.x0, b.y0) and fig.bbox.contains(b.x1, b.y1)
               for b in boxes), boxes
    deepest = fig.axes[3].xaxis.label.get_text().splitlines()
    assert deepest[0] == "x - 271.8281828459045235360287471352664: -1.5e-31 .. +1.5e-31"
    assert fig.axes[0].xaxis.label.get_text().splitlines()[1] == "y: 272 .. 275"


@pytest.mark.parametrize("digits", [17, 25, 34])
def test_deep_window_labels_fit_a_small_figure(digits):
    """A window that ``digits`` significant digits tell apart (34: the deepest double-double
    level), labelled in a 400-pixel figure: no two texts of an axis overlap, none leaves it
    (a long axis name, with its centre, is shrunk to fit)."""
    from fractalsweep.render import level_figure

    lo = Decimal("271.8281828459045235360287471352662497757")  # no trailing zeros
    with localcontext(prec=60):
        values = np.array([lo + k * Decimal(3).scaleb(lo.adjusted() - digits + 1) / 15
                           for k in range(16)], dtype=object)
    fig = level_figure(np.zeros((16, 16)), values, values, xlabel="learning rate (layer 0)",
                       ylabel="learning rate (layer 1)",
                       legend=("converged", "diverged"))
    ax = fig.axes[0]
    fig.canvas.draw()  # places the axis names
    renderer = fig.canvas.get_renderer()
    for axis in (ax.xaxis, ax.yaxis):
        boxes = [t.get_window_extent(renderer) for t in (*axis.get_ticklabels(), axis.label)]
        assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2)), boxes
        assert all(fig.bbox.contains(b.x0, b.y0) and fig.bbox.contains(b.x1, b.y1)
                   for b in boxes), boxes


def test_a_picture_the_disk_refuses_is_python_s_error_naming_it(tmp_path):
    """matplotlib's error named no file ("No space left on device", filename None), and a
    run's --png said "finished tiles are kept, run the same command to resume" of a level
    that was complete."""
    import errno
    import subprocess
    import sys

    import fractalsweep as fs
    from fractalsweep import Execution

    level = fs.run({"training": {"steps": 10}, "grid": {"resolution": 17}}, tmp_path / "s.zarr",
                   execution=Execution(scheduler="sync"), progress=False).level(0)
    out, part = tmp_path / "r.png", tmp_path / ".r.png.part"
    part.symlink_to("/dev/full")  # every write: no space left (the failure removes it)
    with pytest.raises(OSError) as full:
        level.render(out)
    assert full.value.errno == errno.ENOSPC and full.value.filename == str(out)
    command = [sys.executable, "-m", "fractalsweep"]
    part.symlink_to("/dev/full")
    r = subprocess.run([*command, "render", level.store.path, "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert (r.returncode, r.stderr) == (
        1, f"fractalsweep: error: No space left on device ({out})\n")
    job = tmp_path / "s.toml"
    job.write_text("[training]\nsteps = 10\n[grid]\nresolution = 17\n")
    part.symlink_to("/dev/full")
    r = subprocess.run([*command, "run", str(job), "--png", str(out), "--scheduler", "sync",
                        "--quiet"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and r.stderr == (f"fractalsweep: error: No space left on device "
                                              f"({out}); what the command computed is kept, "
                                              "only this file is not written\n")
    assert not out.exists()


def test_a_picture_that_cannot_be_written_whole_leaves_the_one_before(tmp_path):
    """savefig wrote straight into the file: a file-size limit (or a full disk) left a
    truncated PNG where a good one was."""
    import shlex
    import subprocess
    import sys

    import fractalsweep as fs
    from fractalsweep import Execution

    store = fs.run({"training": {"steps": 10}, "grid": {"resolution": 17}}, tmp_path / "s.zarr",
                   execution=Execution(scheduler="sync"), progress=False)
    before = store.level(0).render(tmp_path / "q.png").read_bytes()
    assert len(before) > 8192

    render = shlex.join([sys.executable, "-m", "fractalsweep", "render", str(tmp_path / "s.zarr"),
                         "--out", str(tmp_path / "q.png"), "--cmap", "classes"])
    # files of at most 8 KiB; SIGXFSZ ignored, so that a write past it fails, not the process
    failed = subprocess.run(["bash", "-c", f"trap '' XFSZ; ulimit -f 8; exec {render}"],
                            capture_output=True, text=True, timeout=300)
    assert failed.returncode == 1 and "File too large" in failed.stderr, failed.stderr
    assert (tmp_path / "q.png").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.png", "s.zarr"]
