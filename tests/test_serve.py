"""The web explorer below the browser: the page's Python callbacks on a real Bokeh document,
the hub's registry and jobs, URL parameters, and an unreachable backend, over real stores."""

import html
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import dask
import distributed  # noqa: F401 - its config defaults exist before dask.config.set
import numpy as np
import pytest
from bokeh.document import Document
from bokeh.events import MouseMove, RangesUpdate

import fractalsweep as fs
from fractalsweep import Execution, faults, store, views
from fractalsweep.cli import main
from fractalsweep.colour import classes, to_rgb
from fractalsweep.hub import Hub
from fractalsweep.serve import NAMES, SETTLE_S, Page, level_image, placement
from fractalsweep.views import box_to_view

SYNC = Execution(scheduler="sync", tile=8)
BOX = (3.2, 10.6, 4.0, 12.4)  # x0, x1, y0, y1 in level 0's pixels


@pytest.fixture
def hub(serve_path):
    hub = Hub(serve_path, SYNC)
    yield hub
    hub.close()


def page(hub, **arguments):
    """A page as the server makes it for a tab whose URL has these parameters."""
    return Page(hub, Document(), {k: [v.encode()] for k, v in arguments.items()})


def settle(page, job, timeout=120):
    """Wait for the page's job, then poll as the page's periodic callback does."""
    assert job.wait(timeout), "the job did not finish"
    page.poll()


def _levels(path):
    return store.level_indices(store.open_root(path))


def _text(div):
    """What a person reads in one of the page's lines."""
    return html.unescape(re.sub(r"<[^>]*>", "", div.text))


def _shown(page):
    return page.source.data["image"][0]


def test_a_page_shows_the_deepest_level_with_its_axes(hub, serve_path):
    p = page(hub)
    score = fs.open(serve_path).level(0).score
    np.testing.assert_array_equal(_shown(p), level_image(score, "paper"))
    assert p.level == 0 and p.url.text == "?level=0&cmap=paper"
    status = _text(p.status)
    assert "level 0" in status and "x 0.1 .. 1e4" in status and "tiles 9/9" in status
    x_axis = p.plot.xaxis[0]
    assert x_axis.ticker.ticks == [0, 4, 8, 12, 16]
    assert x_axis.major_label_overrides == {0: "0.1", 4: "1.78", 8: "31.6", 12: "562",
                                            16: "1e4"}  # values, not log10
    assert x_axis.axis_label == "learning rate (layer 0)"
    assert p.level_list.options == [("0", "0: job 17x17 float64, 0.00 decades deep")]
    p.poll()
    assert "compute: in the server's process" in _text(p.backend)


def test_the_image_puts_row_0_at_the_bottom_and_missing_pixels_clear():
    score = np.array([[-1.0, 1.0, np.nan], [-2.0, 2.0, 3.0]])
    rgba = level_image(score, "classes").view(np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(rgba[..., :3], to_rgb(score, "classes")[::-1])
    assert rgba[0, 2, 3] == 0 and (rgba[..., 3].sum() == 5 * 255)


def test_a_box_zoom_settles_into_a_level_drawn_as_it_lands(hub, serve_path):
    p = page(hub)
    x0, x1, y0, y1 = BOX
    p.plot._trigger_event(RangesUpdate(p.plot, x0=x0, x1=x1, y0=y0, y1=y1))
    p.poll()
    assert p.job is None  # not yet: the view may still be moving (a scroll)
    time.sleep(SETTLE_S)
    p.poll()
    job = p.job
    assert job is not None and job.kind == "zoom"
    while not job.finished:  # be the periodic callback
        p.poll()
        assert p.level in (0, 1)
        time.sleep(0.05)
    p.poll()
    assert _levels(serve_path) == [0, 1] and p.level == 1 and p.job is None
    expected = box_to_view(fs.open(serve_path).level(0).view, (17, 17), (x0, x1), (y0, y1))
    view = fs.open(serve_path).level(1).view
    assert all(view[a].lo == expected[a].lo and view[a].hi == expected[a].hi for a in "xy")
    np.testing.assert_array_equal(_shown(p),
                                  level_image(fs.open(serve_path).level(1).score, "paper"))
    assert "level 1 done" in _text(p.message) and p.url.text == "?level=1&cmap=paper"
    assert p.backdrop.data["image"] == []  # the level is complete: nothing under it
    assert p.plot.x_range.start == -0.5 and p.plot.x_range.end == 16.5


def test_reset_and_tiny_boxes_zoom_nowhere(hub, serve_path):
    p = page(hub)
    p.plot._trigger_event(RangesUpdate(p.plot, x0=-0.5, x1=16.5, y0=-0.5, y1=16.5))
    assert p._pending is None
    p.plot.x_range.update(start=3.0, end=3.5)  # the browser zooms into the box at once
    assert p.zoom_box(3.0, 3.5, 2.0, 9.0) is None and "narrower than a pixel" in _text(p.message)
    assert (p.plot.x_range.start, p.plot.x_range.end) == (-0.5, 16.5)  # it stayed in the box
    assert _levels(serve_path) == [0]


def test_two_requests_for_one_window_compute_it_once(hub, serve_path):
    view = box_to_view(fs.open(serve_path).level(0).view, (17, 17), BOX[:2], BOX[2:])
    release = threading.Event()  # a computation ahead of ours holds the queue meanwhile
    ahead = hub.submit(("ahead",), "zoom", lambda job: release.wait(60))
    barrier, jobs = threading.Barrier(2), []

    def ask():
        barrier.wait()
        jobs.append(hub.zoom(view, (17, 17), "float64"))

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert jobs[0] is jobs[1]
    # a second tab asking while it computes follows the same job
    a, b = page(hub), page(hub)
    assert a.zoom_box(*BOX) is jobs[0] and b.zoom_box(*BOX) is jobs[0]
    a.poll()
    assert jobs[0].state == "queued" and "queued" in _text(a.progress)
    onlooker = page(hub)  # a tab that asked for nothing sees what is being computed
    onlooker.poll()
    assert "zoom asked in another tab" in _text(onlooker.progress)
    release.set()
    assert ahead.wait(10)
    settle(a, jobs[0])
    b.poll()
    assert _levels(serve_path) == [0, 1] and a.level == b.level == 1
    # once it is there, asking again shows it without computing
    c = page(hub, level="0")
    assert c.zoom_box(*BOX) is None and c.level == 1 and "holds this window" in _text(c.message)
    assert b.level_list.options == c.level_list.options and len(c.level_list.options) == 2


def test_another_process_computing_the_store_is_said_in_the_page(hub, serve_path):
    hold = ("import sys, time; from fractalsweep import store\n"
            "with store.driver_lock(sys.argv[1]):\n print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", hold, serve_path], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        p = page(hub)
        settle(p, p.zoom_box(*BOX))
        message = _text(p.message)
        assert "zoom failed" in message and "being computed by another run" in message
        assert f"pid {holder.pid}" in message and p.level == 0
    finally:
        holder.kill()
        holder.wait()
    settle(p, p.zoom_box(*BOX))  # the other driver has gone: the zoom goes through
    assert p.level == 1 and _levels(serve_path) == [0, 1]


def test_a_refused_zoom_says_so_and_force_computes_it(hub, serve_path):
    p = page(hub)
    view = views.box_view(p.view, x=("13", "13.00000000000001"), y=("13", "13.00000000000001"))
    p.plot.y_range.update(start=5.0, end=5.001)
    assert p.request(view) is None
    message = _text(p.message)
    assert "refused" in message and "float64" in message and "tick 'force'" in message
    assert "--force" not in message  # the command line's remedy, not the page's
    assert (p.plot.y_range.start, p.plot.y_range.end) == (-0.5, 16.5)  # the level, whole
    assert _levels(serve_path) == [0]
    p.force_box.active = True  # the override computes the refused window
    assert p.force and "FORCE" in _text(p.status)
    settle(p, p.job)
    assert _levels(serve_path) == [0, 1] and p.level == 1
    assert fs.open(serve_path).level(1).view["x"].hi == "13.00000000000001"
    again = page(hub, level="0")  # the forced level, asked for again: shown, not refused
    assert again.request(view) is None and again.level == 1 and again.refused is None
    assert _text(again.message) == "level 1 holds this window"
    zoomed = fs.open(serve_path).zoom(x=("13", "13.00000000000001"),  # as the command line
                                      y=("13", "13.00000000000001"), execution=SYNC)
    assert zoomed.index == 1 and _levels(serve_path) == [0, 1]


@pytest.mark.parametrize("x", ["1e-400,1", "1,1e400"])
def test_a_window_force_cannot_compute_does_not_offer_force(hub, serve_path, x):
    """A bound below float64's smallest normal number, or beyond its largest, is refused even
    forced (as by the command line and the API, whose messages do not offer --force): the
    page offered "tick 'force'" all the same, and ticking it refused the window again."""
    p = page(hub, x=x, y="1,10")
    message = _text(p.message)
    assert message.startswith("refused: x.") and "float64's" in message, message
    assert "force" not in message and p.refused is None
    p.force_box.active = True
    assert _text(p.message) == message and p.job is None and _levels(serve_path) == [0]


def test_navigation_colours_and_the_level_list(hub, serve_path):
    view = box_to_view(fs.open(serve_path).level(0).view, (17, 17), (2, 9), (2, 9))
    hub.zoom(view, (17, 17), "float64").wait()
    p = page(hub, level="0")
    assert p.level == 0
    p.step(1)
    assert p.level == 1 and p.level_list.value == "1"
    p.step(1)  # no level after the last: stays
    assert p.level == 1
    p.step(-1)
    assert p.level == 0
    p.to_deepest()
    assert p.level == 1
    p.level_list.value = "0"  # chosen in the level list
    assert p.level == 0
    p.copy.label = "copied: http://localhost:8050/?level=0"  # as the button's click sets it
    p.show(0)  # a redraw of the same view keeps it
    assert p.copy.label.startswith("copied")
    p.colours.active = 1
    score = fs.open(serve_path).level(0).score
    assert p.cmap == "classes" and p.url.text == "?level=0&cmap=classes"
    assert p.copy.label == "copy URL of this view"  # not the URL of the view before
    np.testing.assert_array_equal(_shown(p), level_image(score, "classes"))


def test_a_level_removed_under_the_page_is_said_and_left(hub, serve_path):
    """``verify --repair`` removes a level whose creation was cut short (or its folder is
    deleted) while pages show it: back, forward and the colourings failed with a traceback
    in the server's log ('1 is not in list', 'no level 1 in this store'), and the page no
    longer answered."""
    wide = fs.open(serve_path).level(0).view
    for box in ((2, 9), (4, 12)):  # levels 1 and 2; 1 is the narrower, the deepest
        hub.zoom(box_to_view(wide, (17, 17), box, box), (17, 17), "float64").wait()
    ahead, behind, coloured, idle = (page(hub, level="1") for _ in range(4))
    shutil.rmtree(f"{serve_path}/levels/1")
    ahead.step(1)  # back and forward count from where it was
    behind.step(-1)
    assert ahead.level == 2 and behind.level == 0
    coloured.colours.active = 1
    idle._listed_at = 0.0  # the page looks at the level list now
    idle.poll()
    for p in (coloured, idle):
        assert p.level == 2 and p.cmap == ("classes" if p is coloured else "paper")
        assert _text(p.message) == ("level 1 is no longer in this store; showing the deepest "
                                    "level, 2")
    # the last level removed, the next one takes its index: the list describes the new one
    shutil.rmtree(f"{serve_path}/levels/2")
    idle._listed_at = 0.0
    idle.poll()
    assert idle.level == 0 and [i for i, _ in idle.level_list.options] == ["0"]
    hub.zoom(box_to_view(wide, (17, 17), (6, 10), (6, 10)), (17, 17), "float64").wait()
    fresh = Hub(serve_path, SYNC)
    try:
        assert hub.level_options() == fresh.level_options()
    finally:
        fresh.close()


def test_stepping_away_from_a_computing_level_stays_there(hub, serve_path):
    p = page(hub)
    job = p.zoom_box(*BOX)
    p.go(0)
    settle(p, job)
    assert p.level == 0 and "level 1 done" in _text(p.message)
    assert "(in the level list)" in _text(p.message)
    p.step(1)
    assert p.level == 1


def test_hover_reads_a_pixels_values_score_and_class(hub, serve_path):
    p = page(hub)
    level = fs.open(serve_path).level(0)
    p.plot._trigger_event(MouseMove(p.plot, x=3.2, y=4.9, sx=0, sy=0))
    readout = _text(p.readout)
    assert f"learning rate (layer 0) = {float(level['x'][3])!r}" in readout
    assert f"learning rate (layer 1) = {float(level['y'][5])!r}" in readout
    assert f"score {level.score[5, 3]:.6g} ({NAMES[classes(level.score)[5, 3]]})" in readout
    p.plot._trigger_event(MouseMove(p.plot, x=40.0, y=4.9, sx=0, sy=0))
    assert _text(p.readout) == ""


@pytest.mark.parametrize("arguments, words", [
    ({"level": "7"}, ["no level 7"]),
    ({"level": "two"}, ["level=two", "level number"]),
    ({"cmap": "nope"}, ["unknown cmap 'nope'"]),
    ({"zoom": "2"}, ["unknown URL parameter 'zoom'"]),
    ({"x": "1,2"}, ["y is missing"]),
    ({"x": "1,2,3", "y": "1,2"}, ["x=1,2,3", "LO,HI"]),
    ({"x": "20,10", "y": "1,2"}, ["lo must be below hi"]),
    ({"x": "-1,10", "y": "1,2"}, ["log axis needs bounds > 0"]),
    ({"level": "0", "x": "1,2", "y": "1,2"}, ["not both"]),
])
def test_a_bad_url_parameter_is_refused_in_the_page(hub, serve_path, arguments, words):
    p = page(hub, **arguments)
    message = _text(p.message)
    assert message.startswith("bad URL: ") and "showing the deepest level" in message
    for word in words:
        assert word in message
    assert p.level == 0 and _levels(serve_path) == [0]


def test_a_url_opens_a_level_its_colouring_or_a_window(hub, serve_path):
    p = page(hub, level="0", cmap="classes")
    assert p.level == 0 and p.colours.active == 1 and p.cmap == "classes"
    p = page(hub, cmap="magma")  # any matplotlib colormap; none of the buttons
    assert p.colours.active is None and p.url.text == "?level=0&cmap=magma"
    p = page(hub, x="10,100", y="1,10")  # a window the store lacks is computed
    settle(p, p.job)
    assert p.level == 1 and fs.open(serve_path).level(1).view["x"].lo == "10"
    again = page(hub, x="1e1,1E2", y="1,10")  # and found again, however it is written
    assert again.job is None and again.level == 1


def test_ladder_and_export_from_the_page(hub, serve_path):
    p = page(hub)
    settle(p, p.zoom_box(5, 11, 5, 11))
    settle(p, p.build_ladder())
    ladder = [int(i) for i in _text(p.message).split("levels [")[1].split("]")[0].split(", ")]
    assert ladder[-1] == 1 and len(ladder) >= 3 and set(_levels(serve_path)) >= set(ladder)
    assert p.level == 1  # the page stays where it was
    p.export_format.value = "gif"
    job = p.export()
    assert p.export() is job  # one export of a format at a time
    settle(p, job)
    token, name = job.result["url"].split("/")[-2:]
    assert hub.download(token).name == name == "s-zoom-1.gif"
    assert (hub.download(token).parent / name).stat().st_size > 1000
    assert f'href="{job.result["url"]}"' in p.download.text
    assert hub.download("not-a-token") is None


def test_a_ladder_from_level_0_has_nothing_to_build(hub, serve_path):
    p = page(hub)
    settle(p, p.build_ladder())
    assert "no ladder to build" in _text(p.message) and _levels(serve_path) == [0]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_scheduler_is_said_in_the_page(serve_path):
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        hub = Hub(serve_path, Execution(scheduler=f"tcp://127.0.0.1:{_free_port()}"))
        try:
            p = page(hub)
            assert hub.backend.wait(60)
            p.poll()
            assert "cannot reach the compute backend (the Dask scheduler tcp://127.0.0.1:" \
                in _text(p.backend)
            settle(p, p.zoom_box(*BOX))
            assert "zoom failed: cannot reach the compute backend" in _text(p.message)
            assert _levels(serve_path) == [0] and p.level == 0
        finally:
            hub.close()


def test_a_local_cluster_serves_the_zooms_and_stops_with_the_hub(serve_path):
    """The session connects in a job's thread and closes from the server's."""
    hub = Hub(serve_path, Execution(workers=1, gpus=(), tile=8))
    try:
        p = page(hub)
        assert hub.backend.wait(120) and hub.backend.error is None
        p.poll()
        assert "compute: a local cluster, 1 worker(s); Dask dashboard http" in _text(p.backend)
        settle(p, p.zoom_box(*BOX))
        assert p.level == 1 and fs.open(serve_path).level(1).complete
    finally:
        hub.close()


def test_cli_serve_refuses_a_busy_port_in_one_line(serve_path, capsys, monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", serve_path, "--scheduler", "sync", "--port", str(port)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"cannot serve on 127.0.0.1:{port}" in err[0]
        # the default local cluster: it was started first, and its teardown printed a traceback
        r = subprocess.run([sys.executable, "-m", "fractalsweep", "serve", serve_path, "--port",
                            str(port), "--workers", "1"], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 2 and r.stderr.strip().splitlines() == err, r.stderr
    assert main(["serve", serve_path, "--scheduler", "sync", "--host", "::1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()  # was Bokeh's traceback
    assert len(err) == 1 and "--host ::1: IPv6 addresses are not supported" in err[0]
    for host in ("http://127.0.0.1", "127.0.0.1:8050"):  # were "IPv6 ... not supported" too
        assert main(["serve", serve_path, "--scheduler", "sync", "--host", host]) == 2
        assert "without a scheme or a port (that is --port)" in capsys.readouterr().err
    assert main(["serve", serve_path, "--port", "70000"]) == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # a GPU this machine lacks: it served a
    assert main(["serve", serve_path, "--gpus", "0"]) == 2  # page that could never compute
    assert "gpus = 0: no GPU 0 on this machine" in capsys.readouterr().err
    assert main(["serve", serve_path + "-missing", "--scheduler", "sync"]) == 2


def _serving_mid_tile(serve_path, tmp_path):
    """``serve --scheduler sync`` with a zoom under way, its first tile held 5 s by the fault
    hook: a signal sent now lands in the middle of a tile every time."""
    slowed = tmp_path / "slowed"
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "fractalsweep", "serve", serve_path, "--scheduler", "sync",
         "--tile", "8", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, faults.VARIABLE: f"tile-data:slow:{slowed}"})
    assert server.stdout.readline().startswith("fractalsweep serve:")
    assert server.stdout.readline().startswith("from your own machine: ssh")
    # a page opened on a window the store lacks starts its zoom
    urllib.request.urlopen(f"http://127.0.0.1:{port}/?x=10,100&y=10,100", timeout=60).read()
    deadline = time.monotonic() + 120
    while not slowed.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert slowed.exists(), "the zoom's first tile was not reached"
    return server


def _resumes(serve_path):
    r = subprocess.run([sys.executable, "-m", "fractalsweep", "resume", serve_path,
                        "--scheduler", "sync"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert fs.open(serve_path).level(1).complete


def test_a_sync_server_stopped_mid_zoom_finishes_its_tile_and_frees_the_store(serve_path,
                                                                              tmp_path):
    """SIGTERM while a zoom computes in the server's process (--scheduler sync): the process
    aborted ('terminate called after throwing ...', status 134, 4 times in 5), the zoom's
    thread cut short inside JAX's C++ code by the interpreter's exit, and the store's lock
    was left behind. The server now waits for the tile under way, then stops."""
    server = _serving_mid_tile(serve_path, tmp_path)
    try:
        server.terminate()
        out, err = server.communicate(timeout=120)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 0, err
    for abort in ("terminate called", "FATAL", "Traceback"):
        assert abort not in err, err
    assert store.read_lock(serve_path) is None  # released: the next run needs no take-over
    assert fs.open(serve_path).level(1).tiles_done == 1  # the tile under way, kept
    assert "stopping after the tile under way" in out
    _resumes(serve_path)


def test_a_second_ctrl_c_stops_a_sync_server_at_once(serve_path, tmp_path):
    """Ctrl-C again while the server waits for its tile: it stops at once, without the
    interpreter's exit that aborts the process (it was that exit, with a traceback)."""
    server = _serving_mid_tile(serve_path, tmp_path)
    try:
        server.send_signal(signal.SIGINT)
        assert server.stdout.readline().startswith("stopping after the tile under way")
        server.send_signal(signal.SIGINT)
        err = server.communicate(timeout=60)[1]
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 130, err
    assert err.strip() == (f"fractalsweep: error: interrupted; finished tiles are kept, "
                           f"'fractalsweep resume {serve_path}' computes the rest")
    assert fs.open(serve_path).level(1).tiles_done == 0  # stopped in its first tile
    _resumes(serve_path)  # the lock of the process gone is taken over


def test_a_damaged_store_is_shown_or_refused_in_one_line(serve_path, capsys):
    """A damaged tile is left out of the picture and named in the page (it was an HTTP 500
    on every page load) and in the hover readout (which called its pixels not computed yet);
    a level whose metadata is unreadable is refused at start, as by `info`."""
    score = fs.open(serve_path).level(0).score
    with open(f"{serve_path}/levels/0/score/c/0/0", "r+b") as chunk:
        chunk.truncate(5)
    os.remove(f"{serve_path}/levels/0/score/c/1/1")  # deleted under its marker
    hub = Hub(serve_path, SYNC)
    try:
        p = page(hub)
    finally:
        hub.close()
    expected = score.copy()
    expected[:8, :8] = expected[8:16, 8:16] = np.nan  # tiles (0, 0) and (1, 1): 8x8 pixels
    np.testing.assert_array_equal(_shown(p), level_image(expected, "paper"))
    assert _text(p.message) == (f"level 0: damaged tile(s) (0, 0), (1, 1); 'fractalsweep verify "
                                f"{serve_path} --repair' unmarks them and 'fractalsweep resume "
                                f"{serve_path}' recomputes them; they are not drawn")
    p.plot._trigger_event(MouseMove(p.plot, x=9.0, y=10.0, sx=0, sy=0))  # in tile (1, 1)
    assert _text(p.readout).endswith(": its tile is damaged (not drawn)")
    p.plot._trigger_event(MouseMove(p.plot, x=9.0, y=2.0, sx=0, sy=0))  # tile (0, 1): intact
    assert f"score {score[2, 9]:.6g}" in _text(p.readout)

    shutil.rmtree(f"{serve_path}/levels/0/tiles")
    with pytest.raises(fs.StoreError, match="level 0: an array or attribute is missing"):
        Hub(serve_path, SYNC)
    assert main(["serve", serve_path, "--scheduler", "sync", "--port", str(_free_port())]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "see 'fractalsweep verify'" in err[0], err


def test_placement_of_a_wider_level_under_a_deeper_one(serve_path):
    store_ = fs.open(serve_path)
    wide = store_.level(0).view
    deep = box_to_view(wide, (17, 17), (4, 12), (4, 12))
    x, y, dw, dh = placement(wide, (17, 17), deep, (17, 17))
    # pixel 4 of the wide level is pixel 0 of the deep one, pixel 12 its pixel 16; the
    # window's bounds are rounded to a thousandth of a pixel
    assert abs(x - (-0.5 - 4) * 2) < 0.01 and abs(dw - 17 * 2) < 0.01
    assert abs(x - y) < 0.01 and abs(dw - dh) < 0.01
