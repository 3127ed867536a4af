"""The web explorer in a real browser: ``fractalsweep serve`` as a subprocess on a free
localhost port, driven by Debian's chromium (headless) through playwright.

Without /usr/bin/chromium the session's fixture installs Debian's ``chromium`` with apt when
running as root, and skips these tests with the reason otherwise; tests/test_serve.py covers
everything below the browser either way. Screenshots go to the test's temporary folder, and
also to $FRACTALSWEEP_SCREENSHOTS when set (docs/explore.md).
"""

import contextlib
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

import fractalsweep as fs
from fractalsweep import Execution

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 120_000  # a level of the tiny store takes seconds; the first one compiles the kernel


def _install_chromium() -> str | None:
    """Install Debian's chromium; the reason it could not be, or None."""
    if os.geteuid() != 0:
        return f"no {CHROMIUM}, and installing Debian's chromium needs root"
    if shutil.which("apt-get") is None:
        return f"no {CHROMIUM}, and no apt-get to install Debian's chromium"
    result = subprocess.run("apt-get update -q && apt-get install -y -q "
                            "--no-install-recommends chromium", shell=True, text=True,
                            capture_output=True, timeout=1200)
    if result.returncode != 0 or not os.path.exists(CHROMIUM):
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return f"installing Debian's chromium failed: {tail}"
    return None


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM) and (reason := _install_chromium()):
        pytest.skip(reason)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(path, *options, env=None):
    """``fractalsweep serve`` in a subprocess; yields its URL. It must stop cleanly on
    SIGTERM and write no traceback."""
    port = _free_port()
    command = [sys.executable, "-m", "fractalsweep", "serve", path, "--port", str(port), *options]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, **(env or {})})
    try:
        first = server.stdout.readline()
        assert first.startswith("fractalsweep serve:"), first + server.stderr.read()
        assert f"http://127.0.0.1:{port}/" in first
        assert f"ssh -N -L {port}:localhost:{port}" in server.stdout.readline()
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        err = server.communicate(timeout=60)[1]
    assert server.returncode == 0, err
    assert "Traceback" not in err, err


def _shot(page, name, tmp_path) -> np.ndarray:
    """A screenshot of the picture (saved), as an RGB array."""
    png = page.locator(".bk-Figure").first.screenshot()
    (tmp_path / name).write_bytes(png)
    if os.environ.get("FRACTALSWEEP_SCREENSHOTS"):
        Path(os.environ["FRACTALSWEEP_SCREENSHOTS"], name).write_bytes(png)
    return matplotlib.image.imread(io.BytesIO(png))[..., :3]


def _drag(page, start, end):
    """Drag a box on the picture, corners as fractions of its size from the top left."""
    box = page.locator(".bk-Figure").first.bounding_box()
    (x0, y0), (x1, y1) = [(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
                          for fx, fy in (start, end)]
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=4)
    page.mouse.move(x1, y1, steps=4)
    page.mouse.up()


def _colours(image: np.ndarray) -> int:
    return len(np.unique((image * 255).astype(np.uint8).reshape(-1, 3), axis=0))


def test_drag_a_box_and_the_new_level_lands(browser, serve_path, tmp_path):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1000, "height": 820},
                                  permissions=["clipboard-read", "clipboard-write"])
    with served(serve_path, "--scheduler", "sync", "--tile", "8") as url:
        page = context.new_page()
        page.goto(url)
        expect(page.locator("#fs-status")).to_contain_text("level 0", timeout=30_000)
        expect(page.locator("#fs-status")).to_contain_text("tiles 9/9")
        page.wait_for_timeout(500)  # the canvas paints after the document arrives
        before = _shot(page, "serve-level0.png", tmp_path)
        assert _colours(before) > 50  # 289 pixels of the paper's colouring, axes, ticks

        box = page.locator(".bk-Figure").first.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        expect(page.locator("#fs-readout")).to_contain_text("learning rate (layer 0) = ")
        expect(page.locator("#fs-readout")).to_contain_text("score ")

        _drag(page, (0.35, 0.35), (0.6, 0.6))
        expect(page.locator("#fs-progress")).to_contain_text("zoom", timeout=10_000)
        expect(page.locator("#fs-message")).to_contain_text("level 1 done", timeout=WAIT_MS)
        expect(page.locator("#fs-status")).to_contain_text("level 1")
        page.wait_for_timeout(500)
        after = _shot(page, "serve-level1.png", tmp_path)
        assert [level.index for level in fs.open(serve_path).levels] == [0, 1]
        assert fs.open(serve_path).level(1).complete
        assert np.abs(after - before).mean() > 0.02 and _colours(after) > 50
        assert page.url == f"{url}?level=1&cmap=paper"

        # colouring, URL, and the same view opened from the copied URL
        page.get_by_role("button", name="classes").click()
        expect(page.locator("#fs-status")).to_contain_text("classes")
        page.get_by_role("button", name="copy URL of this view").click()
        expect(page.get_by_role("button", name="copied:")).to_be_visible()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == f"{url}?level=1&cmap=classes" == page.url
        other = context.new_page()
        other.goto(copied)
        expect(other.locator("#fs-status")).to_contain_text("level 1")
        expect(other.locator("#fs-status")).to_contain_text("classes")
        other.wait_for_timeout(500)
        assert _colours(_shot(other, "serve-classes.png", tmp_path)) > 3

        # two tabs ask for the same window: one computation, one new level (the second
        # tab joins it, or finds the level done if it finished before that tab's drag)
        for tab in (page, other):
            _drag(tab, (0.2, 0.2), (0.7, 0.45))
        for tab in (page, other):
            expect(tab.locator("#fs-message")).to_contain_text(
                re.compile("level 2 (done|holds this window)"), timeout=WAIT_MS)
        assert any("level 2 done" in tab.locator("#fs-message").inner_text()
                   for tab in (page, other))
        assert [level.index for level in fs.open(serve_path).levels] == [0, 1, 2]

        # a bad URL parameter is refused in the page
        other.goto(f"{url}?level=7&cmap=%3Cb%3Ebold")
        expect(other.locator("#fs-message")).to_contain_text("bad URL: unknown cmap '<b>bold'")
        expect(other.locator("#fs-status")).to_contain_text("level 2")

        # scrolling zooms too, once the wheel has stopped
        box = page.locator(".bk-Figure").first.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        page.mouse.wheel(0, -400)
        expect(page.locator("#fs-message")).to_contain_text("level 3 done", timeout=WAIT_MS)
        assert [level.index for level in fs.open(serve_path).levels] == [0, 1, 2, 3]
        context.close()


def test_ladder_export_and_download(browser, serve_path, tmp_path):
    from playwright.sync_api import expect

    fs.open(serve_path, execution=Execution(scheduler="sync", tile=8)).zoom(
        centre=(30, 300), width=1.5, progress=False)
    with served(serve_path, "--scheduler", "sync", "--tile", "8") as url:
        page = browser.new_page(viewport={"width": 1000, "height": 820})
        page.goto(f"{url}?level=1")
        expect(page.locator("#fs-status")).to_contain_text("level 1", timeout=30_000)
        page.get_by_role("button", name="build the ladder up to level 0").click()
        expect(page.locator("#fs-message")).to_contain_text("ladder: levels [3, 2, 1]",
                                                            timeout=WAIT_MS)
        page.get_by_role("combobox").nth(1).select_option("gif")
        page.get_by_role("button", name="export", exact=True).click()
        link = page.locator("#fs-download a")
        expect(link).to_contain_text("download s-zoom-1.gif", timeout=WAIT_MS)
        with page.expect_download() as download:
            link.click()
        got = tmp_path / "got.gif"
        download.value.save_as(got)
        written = Path(serve_path).parent / "s-zoom-1.gif"
        assert got.read_bytes() == written.read_bytes() and got.read_bytes()[:6] == b"GIF89a"
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"{url}download/guessed/s-zoom-1.gif")
        page.close()


def test_a_page_without_its_backend_says_so(browser, serve_path):
    from playwright.sync_api import expect

    with served(serve_path, "--scheduler", f"tcp://127.0.0.1:{_free_port()}",
                env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"}) as url:
        page = browser.new_page()
        page.goto(url)
        expect(page.locator("#fs-backend")).to_contain_text(
            "cannot reach the compute backend (the Dask scheduler tcp://127.0.0.1:",
            timeout=30_000)
        expect(page.locator("#fs-status")).to_contain_text("level 0")
        page.close()


def test_a_page_whose_server_stopped_says_so(browser, serve_path):
    """It kept showing its last state, as if live."""
    from playwright.sync_api import expect

    with served(serve_path, "--scheduler", "sync") as url:
        page = browser.new_page()
        page.goto(url)
        expect(page.locator("#fs-status")).to_contain_text("level 0", timeout=WAIT_MS)
    expect(page.locator("#fs-message")).to_contain_text(
        "the server has stopped or cannot be reached: this page no longer updates",
        timeout=30_000)
    page.close()
