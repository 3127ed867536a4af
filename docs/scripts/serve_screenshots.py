"""Screenshots of the web explorer for docs/explore.md, taken in headless chromium.

Run from the repository root, with the test extras installed and Debian's chromium at
/usr/bin/chromium (``apt-get install chromium``):

    python docs/scripts/serve_screenshots.py [--outdir build/serve] [--workers 2]

This computes the quickstart's overview at 65x65 (``fractalsweep run jobs/quickstart.toml
--set grid.resolution=65``; a run resumes, so a second call reuses it), serves it with
``fractalsweep serve --workers N --tile 13`` on a free localhost port, drags a box across the
boundary and writes docs/serve-landing.png (the new level's tiles landing over the stretched
overview) and docs/serve-zoomed.png (the finished level, a pixel under the mouse).
"""

import argparse
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BOX = ((0.70, 0.34), (0.92, 0.56))  # corners as fractions of the picture, from its top left


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", default="build/serve", type=Path)
    parser.add_argument("--workers", default=2, type=int)
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    store = args.outdir / "quickstart.zarr"
    subprocess.run([sys.executable, "-m", "fractalsweep", "run", "jobs/quickstart.toml",
                    "--store", store, "--set", "grid.resolution=65", "--no-render", "--quiet",
                    "--workers", str(args.workers)], check=True)
    served = args.outdir / "served.zarr"  # a fresh copy: the zoom is computed every time
    shutil.rmtree(served, ignore_errors=True)
    shutil.copytree(store, served)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "fractalsweep", "serve", served, "--port",
                               str(port), "--workers", str(args.workers), "--tile", "13"],
                              stdout=subprocess.PIPE, text=True)
    try:
        print(server.stdout.readline(), end="")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                 args=ARGS)
            shoot(browser.new_page(viewport={"width": 1020, "height": 840}),
                  f"http://127.0.0.1:{port}/")
            browser.close()
    finally:
        server.terminate()
        server.wait()


def shoot(page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#fs-backend")).to_contain_text("worker(s)", timeout=120_000)
    picture = page.locator(".bk-Figure").first
    box = picture.bounding_box()
    (x0, y0), (x1, y1) = [(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
                          for fx, fy in BOX]
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=8)
    page.mouse.up()
    progress = page.locator("#fs-progress")
    expect(progress).to_contain_text("computing level", timeout=300_000)
    while int(re.search(r"(\d+)/\d+ tiles", progress.inner_text()).group(1)) < 8:
        page.wait_for_timeout(100)
    page.screenshot(path="docs/serve-landing.png")
    expect(page.locator("#fs-message")).to_contain_text("done", timeout=300_000)
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.45)
    expect(page.locator("#fs-readout")).to_contain_text("score")
    page.screenshot(path="docs/serve-zoomed.png")
    for name in ("serve-landing.png", "serve-zoomed.png"):
        print(f"wrote docs/{name}: {Path('docs', name).stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
