"""The zoom-animation exporter on a real three-keyframe store, encoded and decoded for real."""

import dataclasses
import errno
import itertools
import re
import shlex
import subprocess
import sys
from decimal import Decimal, localcontext

import imageio_ffmpeg
import numpy as np
import pytest
import zarr

import fractalsweep as fs
from fractalsweep import Execution, store
from fractalsweep.animate import animate
from fractalsweep.colour import CLASS_COLOURS, to_rgb
from fractalsweep.config import resolve
from fractalsweep.errors import AnimationError
from fractalsweep.execute import run_level
from fractalsweep.frames import render_frames, sample_axis
from fractalsweep.keyframes import zoom_schedule
from fractalsweep.levels import find_ladder
from fractalsweep.store import LevelSpec
from fractalsweep.video import choose_codec

TILE = 16
SYNC = Execution(scheduler="sync", tile=TILE)
JOB = {"training": {"steps": 20}, "x": {"log10": [-1, 4]}, "y": {"log10": [-1, 4]},
       "grid": {"resolution": 32}}
CENTRE, WIDTH = Decimal("1.5"), Decimal(5)  # the job's window in log10 units


def window(cfg, centre, width):
    """A view of ``width`` log10 units around ``centre``, as exact decimal strings."""
    with localcontext() as ctx:
        ctx.prec = 40
        lo, hi = (str(Decimal(10) ** (centre + sign * width / 2)) for sign in (-1, 1))
    return {a: dataclasses.replace(getattr(cfg, a), lo=lo, hi=hi) for a in ("x", "y")}


@pytest.fixture(scope="module")
def ladder_store(tmp_path_factory):
    """Levels: 0 the job's view, 1 a quarter as wide, 2 half as wide, 3 off-centre (no rung).

    The rungs are computed out of order, so the ladder must be ordered by width, not index.
    """
    path = str(tmp_path_factory.mktemp("animate") / "zoom.zarr")
    cfg = resolve(JOB)
    views = [window(cfg, CENTRE, WIDTH), window(cfg, CENTRE, WIDTH / 4),
             window(cfg, CENTRE, WIDTH / 2), window(cfg, CENTRE + 1, WIDTH / 2)]
    with SYNC.session(progress=False) as session:
        for level, view in enumerate(views):
            run_level(path, cfg, session, level, LevelSpec(view, cfg.grid.resolution, cfg.dtype))
    return path


def score(path, level):
    return zarr.open_group(path, mode="r")[f"levels/{level}/score"][:]


def decode(path):
    """Stream facts and every frame of a video or GIF, read back with the bundled ffmpeg."""
    run = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path),
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True)
    log = run.stderr.decode()  # the input stream is described first, e.g.
    # "Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709, progressive), 256x192, ..."
    codec, pix_fmt, width, height = re.search(
        r"Video: (\w+).*?, (\w+)(?:\([^)]*\))?, (\d+)x(\d+)", log).groups()
    fps = float(re.search(r"([\d.]+) fps", log).group(1))
    width, height = int(width), int(height)
    frames = np.frombuffer(run.stdout, np.uint8).reshape(-1, height, width, 3)
    return {"codec": codec, "pix_fmt": pix_fmt, "size": (width, height), "fps": fps}, frames


def test_find_ladder_orders_rungs_widest_first(ladder_store):
    ladder = find_ladder(ladder_store)
    assert [kf.level for kf in ladder] == [0, 2, 1]
    for wide, deep in itertools.pairwise(ladder):
        for a in (0, 1):
            assert abs(wide.width[a] / deep.width[a] - 2) < Decimal("1e-20")
            assert abs(wide.centre[a] - CENTRE) < Decimal("1e-20")


def test_find_ladder_needs_two_complete_rungs(tmp_path):
    path = str(tmp_path / "one.zarr")
    cfg = resolve(JOB)
    fs.run(cfg, path, execution=SYNC, progress=False)
    # A half-width level that was created but never computed is not a keyframe.
    spec = LevelSpec(window(cfg, CENTRE, WIDTH / 2), cfg.grid.resolution, cfg.dtype)
    store.ensure_level(store.open_root(path, mode="r+"), 1, cfg, spec)
    with pytest.raises(ValueError, match="no zoom ladder") as err:
        find_ladder(path)
    assert "\n" not in str(err.value) and "1 of 2 levels complete" in str(err.value)
    assert f"level(s) 1 not finished: 'fractalsweep resume {path}'" in str(err.value)


def test_zoom_schedule_constant_and_eased():
    np.testing.assert_allclose(zoom_schedule(2, 4, ease=False), np.arange(9) / 4)
    s = zoom_schedule(3, 10)
    assert len(s) == 3 * 10 + 10 + 1 and s[0] == 0.0 and s[-1] == 3.0
    steps = np.diff(s)
    assert np.all(steps > 0)
    assert steps[0] < 0.01 and steps[-1] < 0.01  # starts and stops slowly
    np.testing.assert_allclose(steps[10:-10], 0.1)  # full speed in the middle
    np.testing.assert_allclose(s, 3.0 - s[::-1], atol=1e-12)  # as slow out as in


def test_sample_axis_nearest_and_coverage():
    assert sample_axis(5, 5, 1.0, 0.0)[2].tolist() == [0, 1, 2, 3, 4]
    start, stop, index = sample_axis(9, 5, 2.0, 0.0)  # keyframe is the middle half of the view
    assert (start, stop) == (2, 7) and index.tolist() == [0, 1, 2, 3, 4]
    assert sample_axis(9, 5, 2.0, 1.0)[:2] == (0, 3)  # keyframe under the view's left quarter
    assert sample_axis(9, 5, 2.0, 2.0)[:2] == (0, 0)  # keyframe beside the view


def test_frames_start_and_end_on_the_keyframes(ladder_store):
    frames = list(render_frames(ladder_store, frames_per_octave=4, size=(32, 32), ease=False))
    assert len(frames) == 2 * 4 + 1
    assert all(f.shape == (32, 32, 3) and f.dtype == np.uint8 for f in frames)
    # The last frame is the deepest keyframe alone, coloured against itself: exactly to_rgb.
    np.testing.assert_array_equal(frames[-1], to_rgb(score(ladder_store, 1)))
    # The first is the widest keyframe, with the next one drawn over its middle half.
    widest = to_rgb(score(ladder_store, 0))
    outside = np.ones((32, 32), bool)
    outside[8:24, 8:24] = False
    np.testing.assert_array_equal(frames[0][outside], widest[outside])
    backwards = list(render_frames(ladder_store, frames_per_octave=4, size=(32, 32),
                                   ease=False, zoom="out"))
    assert all(np.array_equal(a, b) for a, b in zip(backwards, frames[::-1]))
    classes = next(render_frames(ladder_store, size=(32, 32), cmap="classes"))
    assert {tuple(c) for c in classes.reshape(-1, 3)} <= {tuple(c) for c in CLASS_COLOURS}


def test_overlay_draws_border_and_labels(ladder_store):
    plain, marked = (next(render_frames(ladder_store, size=(128, 128), overlay=o))
                     for o in (False, True))
    assert np.all(marked[0] == 255) and np.all(marked[:, -1] == 255)
    changed = (plain != marked).any(-1)
    assert 0.02 < changed.mean() < 0.5  # text boxes along two edges, not the whole picture
    assert not changed[40:100, 40:100].any()


def test_mp4_is_h264_yuv420p_and_matches_the_renderer(ladder_store, tmp_path):
    out = tmp_path / "zoom.mp4"
    # 8 x 6 output pixels a stored pixel: yuv420p's half-resolution chroma costs little there
    options = {"frames_per_octave": 6, "size": (256, 192), "ease": True}
    info = animate(ladder_store, out, fps=30, progress=False, **options)
    expected = list(render_frames(ladder_store, **options))
    assert info["codec"] == "h264" and info["size"] == (256, 192)
    assert info["frames"] == len(expected) == 2 * 6 + 6 + 1
    assert info["levels"] == [0, 2, 1]
    meta, frames = decode(out)
    assert meta == {"codec": "h264", "pix_fmt": "yuv420p", "size": (256, 192), "fps": 30}
    assert len(frames) == info["frames"]
    errors = [np.abs(a.astype(int) - b).mean() for a, b in zip(frames, expected)]
    assert max(errors) < 4, errors
    data = out.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart: playable while loading
    assert not list(tmp_path.glob(".*part"))


def test_gif_matches_the_renderer(ladder_store, tmp_path):
    out = tmp_path / "zoom.gif"
    options = {"frames_per_octave": 4, "size": (63, 47), "zoom": "out"}  # odd sizes: fine in GIF
    info = animate(ladder_store, out, progress=False, **options)
    expected = list(render_frames(ladder_store, **options))
    meta, frames = decode(out)
    assert info["codec"] == meta["codec"] == "gif" and meta["size"] == (63, 47)
    assert len(frames) == info["frames"] == len(expected)
    errors = [np.abs(a.astype(int) - b).mean() for a, b in zip(frames, expected)]
    assert max(errors) < 4, errors


def test_every_gif_pixel_is_the_renderer_s(job_dir, tmp_path):
    """Class colours (and the fades between them) are a few, so each decoded pixel is the
    frame's own up to the palette's rounding: ffmpeg's GIF encoder left pixels it took for
    unchanged transparent, and with a palette per frame some showed the frame before's
    colour (13 of these 37 frames had such pixels, up to 48 levels off)."""
    dived = fs.run(job_dir / "fractals" / "julia_rabbit.toml", tmp_path / "r.zarr",
                   overrides=["grid.resolution=96"], execution=SYNC, progress=False)
    dived.dive(2, execution=SYNC, progress=False)
    options = {"frames_per_octave": 4, "size": (64, 64), "cmap": "classes"}
    animate(dived.path, tmp_path / "r.gif", progress=False, **options)
    expected = list(render_frames(dived.path, **options))
    _, frames = decode(tmp_path / "r.gif")
    assert len(frames) == len(expected) == 37
    off = [int(np.abs(a.astype(int) - b).max()) for a, b in zip(frames, expected)]
    assert max(off) <= 4, off


def test_bad_options_fail_early_with_one_line(ladder_store, tmp_path):
    cases = [({"out": tmp_path / "a.mp4", "size": (63, 48)}, "even"),
             ({"out": tmp_path / "a.avi"}, "output must end"),
             ({"out": tmp_path / "a.mp4", "zoom": "sideways"}, "zoom"),
             ({"out": tmp_path / "a.mp4", "cmap": "nope"}, "unknown cmap"),
             ({"out": tmp_path / "a.mp4", "codec": "mpeg2"}, "valid codecs"),
             ({"out": tmp_path / "a.gif", "fps": 51}, "fps = 51: at most 50 for a GIF"),
             ({"out": tmp_path / "a.mp4", "fps": 1001}, "at most 1000 for h264 video"),
             ({"out": tmp_path / "a.mp4", "fps": 241, "codec": "av1"}, "240 for av1"),
             ({"out": tmp_path / "d.mp4"}, "is a folder")]
    (tmp_path / "d.mp4").mkdir()
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message) as err:
            animate(ladder_store, progress=False, **kwargs)
        assert "\n" not in str(err.value)
    assert [p.name for p in tmp_path.iterdir()] == ["d.mp4"]


def test_encoder_failure_leaves_nothing(ladder_store, tmp_path):
    """ffmpeg's own cause in one line (here: its partial file is a folder, not ours to
    remove); frames too small for an encoder are refused before it starts."""
    (tmp_path / ".z.mp4.part").mkdir()
    with pytest.raises(AnimationError, match=r"ffmpeg failed \(exit .*\) writing .*z\.mp4: "
                       r".*\.z\.mp4\.part.*Is a directory") as failed:
        animate(ladder_store, tmp_path / "z.mp4", size=(32, 32), frames_per_octave=1,
                progress=False)
    assert "\n" not in str(failed.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".z.mp4.part"]
    for codec, side in (("hevc", 16), ("av1", 10)):
        with pytest.raises(AnimationError, match=f"{codec} needs at least {side} pixels"):
            animate(ladder_store, tmp_path / "tiny.mp4", size=(side - 2, 32), codec=codec,
                    frames_per_octave=1, progress=False)
        animate(ladder_store, tmp_path / "small.mkv", size=(side, side), codec=codec,
                frames_per_octave=1, progress=False)
    assert not (tmp_path / "tiny.mp4").exists()


def test_a_full_disk_or_a_file_size_limit_is_the_machine_s_refusal(ladder_store, tmp_path):
    """Python's own words for the file and status 1, as for every other file (a bad request
    is status 2); under a file-size limit ffmpeg dies of SIGXFSZ, which read "ffmpeg failed
    (exit -25) ...: no message"."""
    out = tmp_path / "z.gif"
    out.write_bytes(b"the old animation")
    (tmp_path / ".z.gif.part").symlink_to("/dev/full")  # every write: no space left
    with pytest.raises(OSError) as full:
        animate(ladder_store, out, size=(64, 64), frames_per_octave=1, progress=False)
    assert full.value.errno == errno.ENOSPC and full.value.filename == str(out)
    command = shlex.join([sys.executable, "-m", "fractalsweep", "animate", ladder_store, "--out",
                          str(out), "--size", "256x256", "--quiet"])
    limited = subprocess.run(["bash", "-c", f"ulimit -f 8; exec {command}"],
                             capture_output=True, text=True, timeout=300)
    assert limited.returncode == 1, limited.stderr
    assert limited.stderr == f"fractalsweep: error: File too large ({out})\n"
    assert out.read_bytes() == b"the old animation" and [p.name for p in tmp_path.iterdir()] == [
        "z.gif"]


def test_codec_choice():
    assert choose_codec(".mp4", (3840, 2160)) == "h264"
    assert choose_codec(".mp4", (4096, 4096)) == "hevc"
    assert choose_codec(".mkv", (512, 512), "av1") == "av1"
    assert choose_codec(".GIF", (512, 512)) == "gif"
    with pytest.raises(AnimationError, match="output must end"):
        choose_codec("", (512, 512))


@pytest.mark.parametrize("size", [(160, 160), (240, 240), (320, 320), (512, 288), (512, 512)])
def test_overlay_of_the_deepest_view_keeps_its_texts_apart(size):
    """An overlay's axis names and end labels for a window 34 digits tell apart (the deepest
    double-double level): no two texts' boxes overlap, none leaves the frame; the names are
    shrunk only where they would not fit between the ends."""
    from fractalsweep.frames import _Overlay
    from fractalsweep.render import axis_labels

    lo, hi = (Decimal(f"12.34567890123456789012345678901{d}") for d in ("234", "237"))
    axes = tuple(axis_labels(name, [lo, hi]) for name in ("lr_in", "lr_out"))
    overlay = _Overlay(size)
    overlay.draw(np.zeros((size[1], size[0], 3), np.uint8), axes, "120 steps")
    renderer = overlay.canvas.get_renderer()
    texts = (*overlay.x_texts, *overlay.y_texts, overlay.caption)
    assert [t.get_text() for t in texts] == [axes[0][0], "-1.5e-32", "+1.5e-32", axes[1][0],
                                             "-1.5e-32", "+1.5e-32", "120 steps"]
    boxes = [t.get_bbox_patch().get_window_extent(renderer) for t in texts]
    assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2)), boxes
    frame = overlay.fig.bbox.padded(1)  # a box's pad may pass the 1-px border
    assert all(frame.contains(b.x0, b.y0) and frame.contains(b.x1, b.y1) for b in boxes), boxes
    if min(size) >= 512:
        assert overlay.x_texts[0].get_fontsize() == overlay.caption.get_fontsize()
