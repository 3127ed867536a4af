"""Bad input and bad surroundings, as an adversarial user tries them: every case either runs
or is refused with one line on stderr and exit status 2 (1 for a machine fault), never a
traceback, and nothing is left behind or lost.

The named cases are those of issue 10; the property-based tests (hypothesis) generate job
files, --set values and zoom windows. The command line runs in this process (`cli.main`)
where a real process adds nothing, in a subprocess where it does (signals, pipes).
"""

import gc
import importlib.util
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import uuid
import zlib
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import fractalsweep as fs
from fractalsweep import Execution, cli, kernel, store
from fractalsweep.config import AxisConfig, resolve
from fractalsweep.targets import auto_target

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "jobs" / "quickstart.toml"
TINY = ["--set", "grid.resolution=4", "--set", "training.steps=10", "--scheduler", "sync",
        "--quiet", "--no-render"]


def _main(capsys, *args):
    """``fractalsweep ARGS`` in this process: (status, stdout, stderr lines)."""
    try:
        status = cli.main([str(a) for a in args])
    except SystemExit as exc:  # argparse's own refusals
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, [line for line in err.splitlines() if line.strip()]


def _refused(capsys, *args, words=()):
    status, _, err = _main(capsys, *args)
    assert status == 2 and len(err) == 1, err
    assert err[0].startswith("fractalsweep: error: "), err
    for word in words:
        assert word in err[0], err
    return err[0]


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "t.zarr"
    fs.run({"training": {"steps": 20}, "grid": {"resolution": 8}}, str(path),
           execution=Execution(scheduler="sync", tile=4), progress=False)
    return path


def test_job_files_that_are_not_job_files(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'name = "\xff\xfe"\n')
    _refused(capsys, "run", bad, "--dry-run", words=("not UTF-8",))
    (tmp_path / "dir.toml").mkdir()
    _refused(capsys, "run", tmp_path / "dir.toml", "--dry-run", words=("is a directory",))
    _refused(capsys, "run", "/dev/null", "--dry-run", words=("/dev/null is not a regular file",))
    _refused(capsys, "run", "", "--dry-run", words=("job '': give a path to a TOML job file",))


@pytest.mark.parametrize("override,words", [
    ("seed=99999999999999999999", ["seed", "at most 9223372036854775807"]),
    ("training.batch_seed=-1", ["training.batch_seed", ">= 0"]),
    ("training.lr=nan", ["training.lr", "finite"]),
    ("training.lr=inf", ["training.lr", "finite"]),
    ("training.steps=100000000000000000000000", ["training.steps", "at most 2147483647"]),
    ("name={a=1}", ["name", "string"]),
    ("x.log10=[0, 311]", ["x.hi", "float64's largest"]),
    ("x.log10=[-400, 0]", ["x.lo", "smallest normal"]),
])
def test_values_refused_before_anything_is_made(tmp_path, capsys, override, words):
    _refused(capsys, "run", QUICK, "--store", tmp_path / "s.zarr", *TINY, "--set", override,
             words=words)
    assert not (tmp_path / "s.zarr").exists()


@pytest.mark.parametrize("job,override,words", [
    ("quickstart", "x.kind=[1]", ["x.kind", "valid kinds"]),
    ("quickstart", "x.log10=[0, 1000000]", ["x.log10", "beyond any number"]),
    ("quickstart", 'x.log10=[0, "1e999999999999"]', ["x.log10", "beyond any number"]),
    ("quickstart", "system.max_iter=5", ["system.max_iter", "not 'training'"]),
    ("tasks/image_fit", "data.image=5", ["data.image", "mandelbrot, sample"]),
    ("tasks/image_fit", "data.fourier_scale=nan", ["data.fourier_scale", "finite"]),
    ("fractals/julia_rabbit", "system.max_iter=99999999999", ["max_iter", "at most 2147483647"]),
    ("fractals/julia_rabbit", 'system.c=["1e999999999999", 0]', ["system.c[0]", "beyond any"]),
    ("fractals/julia_rabbit", 'system.c=[0, "1e400"]', ["system.c[1]", "float64's largest"]),
    ("fractals/mandelbrot", "x.lo='-1e400'", ["x.lo = -1e+400: beyond float64's largest"]),
    ("fractals/julia_rabbit", "system.root=1", ["system.root", "newton"]),
    ("fractals/julia_rabbit", "training.steps=5", ["training.steps", "training systems only"]),
])
def test_settings_of_every_kind_refused_before_anything_is_made(tmp_path, capsys, job,
                                                                 override, words):
    _refused(capsys, "run", ROOT / "jobs" / f"{job}.toml", "--store", tmp_path / "s.zarr",
             "--scheduler", "sync", "--set", override, words=words)
    assert not (tmp_path / "s.zarr").exists()


def _png_declaring(side: int) -> bytes:
    """A valid PNG of one grey row repeated, whose header declares ``side`` x ``side``."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * (side + 1))) + chunk(b"IEND", b""))


@pytest.mark.parametrize("dry", [[], ["--dry-run"]])
@pytest.mark.parametrize("image,words", [("gone.png", "No such file"),
                                         ("bomb.png", "exceeds limit")])
def test_an_image_that_cannot_be_read_is_named_by_a_dry_run_too(tmp_path, capsys, dry, image,
                                                                 words):
    (tmp_path / "bomb.png").write_bytes(_png_declaring(20000))  # PIL refuses 4e8 pixels
    _refused(capsys, "run", ROOT / "jobs" / "tasks" / "image_fit.toml", "--store",
             tmp_path / "s.zarr", "--scheduler", "sync", "--set",
             f"data.image={tmp_path / image}", *dry, words=["data.image", image, words])
    assert not (tmp_path / "s.zarr").exists()


def test_store_paths_that_cannot_be_stores(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    _refused(capsys, "run", QUICK, "--store", afile, *TINY, words=("is a file",))
    store_dir = tmp_path / "s.zarr"
    store_dir.mkdir()
    (store_dir / store.LOCK).write_text("garbage")
    _refused(capsys, "run", QUICK, "--store", store_dir, *TINY,
             words=("not a fractalsweep lock file",))


def test_store_urls_whose_filesystem_is_missing(tmp_path, capsys, monkeypatch):
    """A protocol fsspec does not know, or one whose package is not installed, is named in one
    line by every command that opens a store, a dry run too."""
    monkeypatch.chdir(tmp_path)
    urls = {"nosuchfs://bucket/s.zarr": "Protocol not known: nosuchfs",
            "simplecache::nosuchfs://bucket/s.zarr": "Protocol not known: nosuchfs"}
    if importlib.util.find_spec("s3fs") is None:  # not a dependency: absent in CI
        urls["s3://bucket/s.zarr"] = "Install s3fs"
    for url, words in urls.items():
        _refused(capsys, "run", QUICK, "--store", url, *TINY, words=(url, words))
        _refused(capsys, "run", QUICK, "--store", url, "--dry-run", words=(url, words))
        for command in ("info", "verify", "status", "resume"):
            _refused(capsys, command, url, words=(url, words))
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_store_can_be_read_not_computed(tmp_path, capsys):
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only filesystem needs root (permissions do not bind root)")
    mount = tmp_path / "ro"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mount)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        assert _main(capsys, "run", QUICK, "--store", mount / "s.zarr", *TINY)[0] == 0
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        _refused(capsys, "run", QUICK, "--store", mount / "s.zarr", *TINY,
                 words=("cannot write there", "Read-only file system"))
        assert _main(capsys, "info", mount / "s.zarr")[0] == 0
        assert _main(capsys, "verify", mount / "s.zarr")[0] == 0
        for command in (["render", mount / "s.zarr", "--out", mount / "r.png"],
                        ["animate", mount / "s.zarr", "--out", mount / "z.gif"]):
            _refused(capsys, *command, words=(f"folder {mount} is not writable",))
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_zoom_windows_named_for_what_they_are(tiny_store, capsys):
    zoom = ["zoom", tiny_store, "--scheduler", "sync", "--no-render", "--quiet"]
    _refused(capsys, *zoom, "--centre", "30", "300", "--width", "1e30",
             words=("beyond any number",))
    too_wide = _refused(capsys, *zoom, "--centre", "1", "1", "--width", "1e308",
                        words=("10 ** -5e+307: beyond any number", "1e+308 wide"))
    assert len(too_wide) < 200, too_wide  # not the exponent's 308 digits
    for huge in (["--box", "1", "1e999999999999", "1", "10"],
                 ["--centre", "1", "1", "--width", "1e999999999999"],
                 ["--centre", "1e999999999999", "1", "--width", "1", "--log10"]):
        _refused(capsys, *zoom, *huge, words=("1e999999999999", "beyond any number"))
    _refused(capsys, *zoom, "--centre", "30", "300", "--width", "1e-45", "--force",
             words=("significant digits",))
    _refused(capsys, *zoom, "--box", "1e300", "1e310", "1", "2", "--force",
             words=("x.hi", "float64's largest"))
    _refused(capsys, *zoom, "--auto", "--width", "1", words=("--width goes with --centre",))
    _refused(capsys, *zoom, "--box", "1", "2", "1", "2", "--box-fraction", "0.5",
             words=("--auto only",))
    _refused(capsys, *zoom, "--auto", "--log10", words=("--log10",))
    assert [lv.index for lv in fs.open(str(tiny_store)).levels] == [0]


def test_auto_zoom_stays_inside_its_parent():
    axis = AxisConfig(lo="1", hi="2", scale="linear")
    cols = np.indices((33, 33))[1]
    score = np.where(cols < 30.5, -1.0, 1.0)  # flush with the far edge: the box chosen
    new = auto_target(score, {"x": axis, "y": axis}, box_fraction=0.3)
    for name in ("x", "y"):
        assert Decimal(new[name].lo) >= 1 and Decimal(new[name].hi) <= 2, new[name]


def test_options_that_would_be_ignored_are_refused(tiny_store, tmp_path, capsys):
    _refused(capsys, "run", QUICK, "--scheduler", "sync", "--workers", "3",
             words=("workers", "local cluster"))
    _refused(capsys, "animate", tiny_store, "--out", tmp_path / "z.gif", "--codec", "hevc",
             words=("applies to video",))
    _refused(capsys, "animate", tiny_store, "--out", tmp_path / "z.mp4", "--size",
             "100000x100000", words=("at most 8192",))


def test_outputs_in_missing_folders_are_refused_before_computing(tmp_path, tiny_store, capsys):
    _refused(capsys, "run", QUICK, "--store", tmp_path / "s.zarr", *TINY[:-1], "--png",
             tmp_path / "nowhere" / "x.png", words=("--png", "does not exist"))
    assert not (tmp_path / "s.zarr").exists()
    _refused(capsys, "render", tiny_store, "--out", tmp_path / "nowhere" / "x.png",
             words=("--out",))
    audit = ["audit", tiny_store, "--sample", "4", "--scheduler", "sync", "--quiet"]
    _refused(capsys, *audit, "--png", tmp_path / "nowhere" / "a.png", words=("--png", "folder"))
    _refused(capsys, "bench", "--json", tmp_path / "nowhere" / "b.json", words=("--json",))
    os.mkfifo(tmp_path / "pipe.png")  # the picture written whole would have replaced it
    _refused(capsys, "render", tiny_store, "--out", tmp_path / "pipe.png",
             words=("pipe.png is not a regular file",))
    (tmp_path / "afile").write_text("")
    _refused(capsys, "animate", tiny_store, "--out", tmp_path / "afile" / "z.gif",
             words=("--out", "afile is a file, not a folder"))
    for picture in (["render", tiny_store, "--out"], [*audit, "--png"],
                    ["dimension", tiny_store, "--plot"],
                    ["run", QUICK, "--store", tmp_path / "s.zarr", *TINY[:-1], "--png"]):
        for name in ("x.nope", "x", ""):  # matplotlib would refuse, or append .png unsaid
            _refused(capsys, *picture, tmp_path / name if name else "",
                     words=(picture[-1], "file name"))
    assert not (tmp_path / "s.zarr").exists()
    assert "audit" not in zarr.open_group(str(tiny_store), mode="r")["levels/0"]


def test_empty_names_and_wrong_kinds_of_job(tmp_path, tiny_store, capsys):
    _refused(capsys, "run", QUICK, "--store", "", *TINY, words=("--store ''", "quickstart.zarr"))
    _refused(capsys, "run", QUICK, "--scheduler", "", "--dry-run", words=("--scheduler",))
    _refused(capsys, "run", QUICK, "--gpu-mem-fraction", "2", "--dry-run",
             words=("--gpu-mem-fraction", "0 < F <= 1"))
    _refused(capsys, "serve", tiny_store, "--host", "", "--scheduler", "sync",
             words=("--host ''",))
    _refused(capsys, "render", tiny_store, "--out", tmp_path / "r.png", "--cmap", "",
             words=("unknown cmap ''", "valid choices"))
    assert not (tmp_path / "r.png").exists()
    _refused(capsys, "bench", "--job", ROOT / "jobs" / "fractals" / "mandelbrot.toml",
             words=("system.kind = 'mandelbrot'", "training"))


def test_a_bench_that_would_not_measure_a_rate_is_refused(tmp_path, capsys, monkeypatch):
    """Pixels that fill a kernel call in part timed its padding as work (1 pixel: 2k
    net-steps/s, saved for cost estimates); networks too big for memory at once crashed the
    measuring process."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls = kernel.group_size()
    bench = ["bench", "--steps", "2", "--repeats", "1", "--dtype", "float32"]
    _refused(capsys, *bench, "--pixels", "1",
             words=(f"1 pixels fill kernel calls of {calls} networks", f"e.g. {calls}"))
    _refused(capsys, *bench, "--pixels", calls + 1, "--method", "kernel-no-exit",
             words=(f"multiple of {calls}, e.g. {2 * calls}",))
    _refused(capsys, *bench, "--pixels", "16", "--group", "1000000000",
             words=("16 pixels fill kernel calls of 1000000000",))
    _refused(capsys, *bench, "--group", "100000000", "--pixels", "100000000",
             words=("one worker needs about", "to train 100000000 of these networks"))
    _refused(capsys, *bench, "--set", "model.width=100000",
             words=("one worker needs about", "make the network or the data smaller"))
    for item, own in (("training.steps=100000", "--steps"), ('dtype="float64"', "--dtype"),
                      ("grid.resolution=64", "--pixels")):  # were measured without, recorded
        _refused(capsys, *bench, "--set", item, words=(f"--set {item}", f"use {own}"))
    _refused(capsys, *bench, "--dtype", "double-double", "--group", "8",
             words=("--group 8 sets the float64 and float32 kernel's", "without --group"))
    _refused(capsys, *bench, "--json", "/dev/full", words=("/dev/full is not a regular file",))
    status, out, _ = _main(capsys, *bench, "--pixels", "3", "--method", "naive")  # no calls
    assert status == 0 and out.endswith("scale from the kernel method's rate (with its early "
                                        "exit, as a sweep trains), not measured here\n"), out
    assert list(tmp_path.iterdir()) == []  # nothing saved: the naive method alone


def test_a_bench_s_json_is_json_of_what_it_measured(tmp_path, capsys, monkeypatch):
    """Without a naive row the ratio was NaN, which is no JSON; the job recorded was the one
    given, not the steps and dtype measured; a full disk left an empty file, unnamed."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    out = tmp_path / "b.json"
    bench = ["bench", "--steps", "2", "--repeats", "1", "--dtype", "float32", "--method",
             "kernel", "--pixels", str(kernel.group_size()), "--json", out]
    assert _main(capsys, *bench, "--job", QUICK)[0] == 0

    def refuse(constant):
        raise ValueError(constant)

    [row] = json.loads(out.read_text(), parse_constant=refuse)
    assert row["ratio"] is None and row["method"] == "kernel"
    assert row["job"]["training"]["steps"] == 2 and row["job"]["dtype"] == "float32"
    (tmp_path / ".b.json.part").symlink_to("/dev/full")  # every write: no space left
    out.unlink()
    status, _, err = _main(capsys, *bench)
    assert (status, err) == (1, [f"fractalsweep: error: No space left on device ({out})"])
    assert not out.exists()


def test_a_level_missing_an_attribute_is_one_line(tmp_path, tiny_store, capsys):
    damaged = tmp_path / "d.zarr"
    shutil.copytree(tiny_store, damaged)
    meta = damaged / "levels" / "0" / "zarr.json"
    doc = json.loads(meta.read_text())
    del doc["attributes"]["dtype"]
    meta.write_text(json.dumps(doc))
    for command in (["info", damaged], ["zoom", damaged, "--auto", "--scheduler", "sync"]):
        _refused(capsys, *command, words=("level 0", "'dtype'", "fractalsweep verify"))


def test_a_huge_level_is_refused_with_its_estimate(tmp_path, capsys):
    line = _refused(capsys, "run", QUICK, "--store", tmp_path / "s.zarr", "--scheduler", "sync",
                    "--set", "grid.resolution=1000000", words=("files allowed per level",))
    assert "1,000,000,000,000 pixels in 61,042,969 tiles" in line and "--no-limits" in line
    assert not (tmp_path / "s.zarr").exists()
    status, out, _ = _main(capsys, "run", QUICK, "--set", "grid.resolution=1000000",
                           "--dry-run")
    assert status == 0 and "a run would be refused" in out


def test_impossible_sizes_and_depths(tmp_path, tiny_store, capsys, monkeypatch):
    for decades in ("nan", "inf", "0"):
        _refused(capsys, "dive", QUICK, "--decades", decades, "--store", tmp_path / "d.zarr",
                 words=("--decades", "finite number > 0"))
    _refused(capsys, "dive", QUICK, "--decades", "1", "--store", tmp_path / "d.zarr", *TINY,
             words=("4x4 level is too small", "box_fraction 0.25"))
    _refused(capsys, "run", QUICK, "--store", tmp_path / "w.zarr", "--scheduler", "sync",
             "--set", "model.width=100000", words=("of memory available",))
    _refused(capsys, "render", tiny_store, "--out", tmp_path, words=("is a folder",))
    # refused by its size at once, before the precision guard walks its 10^8 coordinates
    _refused(capsys, "zoom", tiny_store, "--box", "0", "1", "0", "1", "--log10", "--resolution",
             "2", "100000000", "--scheduler", "sync", words=("files allowed per level",))
    assert not (tmp_path / "d.zarr").exists() and not (tmp_path / "w.zarr").exists()
    # a saved rate (as test_cost's), so the dry run estimates its years: without one it says
    # "unknown", as on a machine that never ran the bench
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    saved = tmp_path / "cache" / "fractalsweep" / "bench.json"
    saved.parent.mkdir(parents=True)
    saved.write_text(json.dumps({"device": "cpu:0", "device_kind": "cpu", "rows": [
        {"dtype": "float64", "method": "kernel", "net_steps_per_s": 1e5,
         "net_steps_per_cpu_s": 1e5, "job": {}}]}))
    for huge in (["grid.resolution=100000", "training.steps=2000000000"],
                 ["ensemble.seeds=100000000000000"]):  # past timedelta's 999999999 days
        status, out, err = _main(capsys, "run", QUICK, *(f"--set={s}" for s in huge),
                                 "--store", tmp_path / "h.zarr", "--dry-run")
        assert status == 0 and not err and "years of training" in out, err
        assert "a run would be refused" in out and not (tmp_path / "h.zarr").exists()


@pytest.mark.parametrize("where,words", [
    (["--scheduler", "tcp://127.0.0.1:9"], ["does not answer"]),
    (["--scheduler", "nonsense"], ["expected an address"]),
    (["--scheduler", "http://127.0.0.1:8787"], ["http:// is not a scheduler's transport"]),
    (["--scheduler-file", "{tmp}/none.json"], ["not found"]),
    (["--scheduler-file", "{tmp}/stale.json"], ["does not answer", "stale"]),
    (["--cluster", "{tmp}/pbs.toml"], ["'qsub' is not on PATH"]),
])
def test_nowhere_to_compute_is_one_line_within_seconds(tmp_path, capsys, where, words):
    (tmp_path / "stale.json").write_text(json.dumps({"address": "tcp://127.0.0.1:9"}))
    (tmp_path / "pbs.toml").write_text('system = "pbs"\n')
    if "pbs.toml" in where[-1] and subprocess.run(["which", "qsub"]).returncode == 0:
        pytest.skip("qsub is installed here")
    where = [w.format(tmp=tmp_path) for w in where]
    _refused(capsys, "run", QUICK, "--store", tmp_path / "s.zarr", *where, "--quiet",
             words=words)
    assert not (tmp_path / "s.zarr").exists()


@pytest.mark.parametrize("reply,words", [
    # not "(MemoryError: Unable to allocate 3.07 EiB ...)", "(error: unpack_from requires ...)"
    (b"HTTP/1.1 400 Bad Request\r\n\r\n", ["not as a Dask scheduler", "its reply is no Dask"]),
    pytest.param(bytes(64), ["not as a Dask scheduler (its reply is no Dask message)"],
                 id="zeros"),
    ("close", ["not as a Dask scheduler (it closed the connection)"]),  # not CommClosedError
    (None, ["not as a Dask scheduler", "no Dask handshake within 10 s"]),  # a web server
])
@pytest.mark.parametrize("command", ["run", "audit"])
def test_a_listener_that_is_not_a_scheduler_is_one_line(tmp_path, capsys, reply, words, command,
                                                        finished_store):
    """distributed's client would read the reply's first bytes as a message size (a traceback
    about exbibytes) or wait for a handshake forever (an audit did: it checked nothing before
    its client connected)."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)
            if reply == "close":
                conn.close()
            elif reply is not None:
                conn.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()
    address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    args = (["run", QUICK, "--store", tmp_path / "s.zarr"] if command == "run" else
            ["audit", finished_store, "--against", "float32", "--sample", "4"])
    try:
        _refused(capsys, *args, "--scheduler", address, "--quiet", words=words)
    finally:
        listener.close()
        for conn in accepted:
            conn.close()
    assert not (tmp_path / "s.zarr").exists()


@pytest.mark.parametrize("kind", ["worker", "nanny"])
def test_a_worker_s_address_is_refused_as_no_scheduler_s(tmp_path, capsys, kind):
    """A worker or a nanny speaks Dask, but failed the client's first request: a 54-line
    traceback ("Worker.identity() got an unexpected keyword argument 'n_workers'"), exit 1,
    after the store was made."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster:
        nanny = next(iter(cluster.workers.values()))
        address = nanny.address if kind == "nanny" else nanny.worker_address
        _refused(capsys, "run", QUICK, "--store", tmp_path / "s.zarr", "--scheduler", address,
                 "--quiet", words=[f"not as a Dask scheduler (a Dask {kind}, not its scheduler)"])
    assert not (tmp_path / "s.zarr").exists()


@pytest.fixture(scope="module")
def finished_store(tmp_path_factory):
    """A store of the quick job (TINY's settings) with every tile done: level 0 and a zoom."""
    path = tmp_path_factory.mktemp("finished") / "f.zarr"
    cfg = fs.job_config(QUICK, ["grid.resolution=4", "training.steps=10"])
    fs.run(cfg, str(path), execution=Execution(scheduler="sync"), progress=False).zoom(
        centre=(1, 1), width=2, log10=True)
    return path


ZOOMED = ["--centre", "1", "1", "--width", "2", "--log10"]  # finished_store's level 1


@pytest.mark.parametrize("where,words", [
    *((f"--scheduler={address}", "expected an address like tcp://host:8786")
      for address in ("bogus", "localhost", "tcp://", "-1", "tcp://127.0.0.1:99999")),
    ("--scheduler=http://x:1", "http:// is not a scheduler's transport"),
    ("--scheduler-file={tmp}/none.json", "not found"),
    ("--scheduler-file={tmp}/bogus.json", "expected an address like tcp://host:8786"),
])
def test_a_malformed_scheduler_is_refused_first_even_with_nothing_to_compute(
        finished_store, tmp_path, capsys, where, words):
    """Read without the network, before anything else: a command with nothing left to do
    (a finished store, a window already zoomed, a dry run) exited 0 on it, and an audit,
    whose pixels are not a level's tiles, printed distributed's traceback."""
    (tmp_path / "bogus.json").write_text(json.dumps({"address": "bogus"}))
    where = where.format(tmp=tmp_path)
    before = sorted(p.name for p in finished_store.rglob("*"))
    for command in (["run", QUICK, "--store", finished_store, *TINY[:4]],
                    ["run", QUICK, "--store", tmp_path / "new.zarr", "--dry-run"],
                    ["resume", finished_store], ["zoom", finished_store, *ZOOMED],
                    ["ladder", finished_store, "--widest", "2"],
                    ["audit", finished_store, "--against", "float32", "--sample", "4",
                     "--png", tmp_path / "a.png"]):
        no_picture = ["--no-render"] if command[0] in ("run", "zoom", "ladder") else []
        _refused(capsys, *command, where, "--quiet", *no_picture, words=(words,))
    assert sorted(p.name for p in finished_store.rglob("*")) == before
    assert not (tmp_path / "new.zarr").exists() and not (tmp_path / "a.png").exists()


@pytest.mark.parametrize("line,words", [
    ('memory = "lots"', ["memory = 'lots'", "a size like '64GB'"]),
    ("memory = 32", ["memory = 32", "a size like '64GB'"]),
    ('memory = "-5GB"', ["memory = '-5GB'", "a size like '64GB'"]),
    ("walltime = 5", ["walltime = 5", "[D-]HH:MM:SS"]),
    ('walltime = "99:99:99"', ["walltime = '99:99:99'", "below 60"]),
    ('walltime = "60"', ["walltime = '60'", "[D-]HH:MM:SS"]),  # SLURM: minutes; PBS: seconds
    ("extra_directives = [1]", ["extra_directives = [1]", "a list of strings"]),
    ('env_setup = "module load cuda"', ["env_setup = 'module load cuda'", "a list of strings"]),
    ('skip_directives = "--mem"', ["skip_directives = '--mem'", "a list of strings"]),
    ('net_steps_per_second = "x"', ["net_steps_per_second = 'x'", "a number > 0"]),
    ("net_steps_per_second = -1", ["net_steps_per_second = -1", "a number > 0"]),
    ("mem_fraction = 2", ["mem_fraction = 2", "0 < F <= 1"]),
    ("max_jobs = 0", ["max_jobs = 0", "an integer >= 1"]),
    ("adaptive = true\njobs = 4\nmax_jobs = 2", ["max_jobs = 2", "at least jobs (4)"]),
    ('adaptive = "yes"', ["adaptive = 'yes'", "true or false"]),
    ("queue = [1]", ["queue = [1]", "a non-empty string"]),
    ('account = ""', ["account = ''", "a non-empty string"]),
    ("python = 3", ["python = 3", "a non-empty string"]),
    ('log_directory = "/dev/null/logs"', ["log_directory = '/dev/null/logs'",
                                          "a folder that exists or can be made"]),
])
def test_every_cluster_profile_value_is_checked_by_its_key(tmp_path, capsys, line, words):
    """Each was a traceback (from dask, or the cost estimate) or went into the worker's job
    script as it was (a GPU fraction of 2, a negative rate, a string run as a list)."""
    profile = tmp_path / "p.toml"
    profile.write_text(f'system = "slurm"\n{line}\n')
    error = _refused(capsys, "run", QUICK, "--store", tmp_path / "n.zarr", "--cluster", profile,
                     "--dry-run", words=[f"cluster profile {profile}", *words])
    assert "expected" in error
    assert not (tmp_path / "n.zarr").exists()


def test_a_cluster_profile_that_is_not_text_is_one_line(tmp_path, capsys):
    picture = ROOT / "docs" / "adam.png"
    _refused(capsys, "run", QUICK, "--store", tmp_path / "n.zarr", "--cluster", picture,
             "--dry-run", words=(str(picture), "not UTF-8 text"))
    assert not (tmp_path / "n.zarr").exists()


def test_status_names_a_dead_driver(tiny_store, capsys):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    lock = {"host": os.uname().nodename, "pid": int(dead), "started": "earlier"}
    (tiny_store / store.LOCK).write_text(json.dumps(lock))
    try:
        status, out, _ = _main(capsys, "status", tiny_store)
    finally:
        (tiny_store / store.LOCK).unlink()
    assert status == 0 and f"driver pid {dead}" in out and "has exited" in out
    assert f"'fractalsweep resume {tiny_store}' takes its lock over" in out  # what finishes it
    assert "\nrunning:" not in out


def test_a_reader_gone_away_is_not_an_error(tiny_store):
    info = subprocess.Popen([sys.executable, "-m", "fractalsweep", "info", str(tiny_store),
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    info.stdout.close()  # as `| head` does once it has its lines
    assert info.wait(timeout=120) == 0
    assert info.stderr.read() == b""


INTERRUPTED = ("fractalsweep: error: interrupted; finished tiles are kept, run the same "
               "command to resume")


def _interrupt(path, when, *options) -> tuple[int, str]:
    """``fractalsweep run`` of the quick job into ``path``, interrupted as a terminal's Ctrl-C
    does (SIGINT to the whole process group) as soon as ``when(driver)`` (a psutil Process)
    is true; its exit status and stderr."""
    import psutil

    run = subprocess.Popen(
        [sys.executable, "-m", "fractalsweep", "run", str(QUICK), "--store", str(path),
         "--quiet", "--no-render", *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        driver, deadline = psutil.Process(run.pid), time.monotonic() + 300
        while time.monotonic() < deadline and not when(driver):
            time.sleep(0.01)
        os.killpg(run.pid, signal.SIGINT)
        _, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    return run.returncode, err


def _processes(driver) -> list[str]:
    """The command lines of the driver's descendants (its fork server's children too)."""
    return [" ".join(p.cmdline()) for p in driver.children(recursive=True)]


def test_ctrl_c_while_the_command_imports_prints_one_line(tmp_path):
    """Its modules take about 2 s to import; a Ctrl-C then printed the import's traceback
    (27-30 lines ending in KeyboardInterrupt). Sent once NumPy is loaded, which zarr imports
    first thing (Python's own start-up, before, is no command's to end in one line)."""
    def importing(driver) -> bool:
        return any("_multiarray_umath" in m.path for m in driver.memory_maps())

    status, err = _interrupt(tmp_path / "s.zarr", importing)
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 130 and len(lines) == 1, err
    assert lines[0].startswith("fractalsweep: error: interrupted"), err


def test_ctrl_c_prints_one_line_and_keeps_the_lock_clean(tmp_path):
    path = tmp_path / "s.zarr"
    # once a first tile is finished: workers started and busy
    status, err = _interrupt(path, lambda _: (path / "levels/0/tiles/c").exists(),
                             "--set", "training.steps=3000", "--workers", "2")
    assert status == 130, err
    assert [line for line in err.splitlines() if line.strip()] == [INTERRUPTED]
    assert not (path / store.LOCK).exists()


def _fork_server_importing(driver) -> bool:
    if not any("forkserver" in p for p in _processes(driver)):
        return False
    time.sleep(0.3)  # its Python has started and is importing (for about 1.5 s)
    return True


def _workers_forked(driver) -> bool:
    return sum("forkserver" in p for p in _processes(driver)) > 1  # the server's children


@pytest.mark.parametrize("when", [_fork_server_importing, _workers_forked])
def test_ctrl_c_while_the_cluster_starts_prints_one_line(tmp_path, when):
    """The fork server starts first thing and imports; later the workers are forked while
    the cluster starts. A Ctrl-C in either reaches every process, and only the driver may
    speak (a cluster interrupted while it started failed at exit with a traceback)."""
    status, err = _interrupt(tmp_path / "s.zarr", when)
    # Interrupted while importing JAX, the driver sometimes ends by SIGINT after its line
    # (-2 here): a shell reports 130 for both.
    assert status in (130, -signal.SIGINT), err
    assert [line for line in err.splitlines() if line.strip()] == [INTERRUPTED]


@pytest.mark.parametrize("where", ["collector's callback", "__del__"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_python_swallows_is_delivered_again(monkeypatch, where, signum):
    """A Ctrl-C that lands in a garbage collector's callback (JAX registers one) or a
    ``__del__`` was reported as "Exception ignored" and lost: the run went on to its end
    (one run in five of the test above). The command's hook delivers it again."""
    def interrupt(*_):  # its handler raises here, where Python cannot raise
        if not sent:
            sent.append(signum)
            signal.raise_signal(signum)

    class Interrupting:
        __del__ = interrupt

    monkeypatch.setattr(sys, "unraisablehook", cli._unraisable)
    sent = []
    previous = signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT
                             else cli._terminated)
    try:
        with pytest.raises(KeyboardInterrupt):
            if where == "__del__":
                Interrupting()
            else:
                gc.callbacks.append(interrupt)
                gc.collect()
            deadline = time.monotonic() + 60  # a loaded machine may start its timer late:
            while time.monotonic() < deadline:  # one full second was once too short
                time.sleep(cli.REDELIVER_S)  # where it lands, delivered again
    finally:
        if interrupt in gc.callbacks:
            gc.callbacks.remove(interrupt)
        signal.signal(signum, previous)
    assert sent == [signum]


# --- property-based: generated inputs ---------------------------------------------------

PROPERTY = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
SCALARS = st.one_of(
    st.integers(-3, 6), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.booleans())
GARBAGE = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "lo", "hi"]), inner,
                                                 max_size=2)), max_leaves=4)
BOUND = st.floats(1e-4, 1e7)
# Per key: values a user would plausibly write (about half of them valid), and garbage.
PLAUSIBLE = {
    "model.width": st.integers(0, 6), "model.depth": st.integers(0, 3),
    "model.activation": st.sampled_from(["tanh", "relu", "identity", "gelu"]),
    "data.size": st.one_of(st.just("params"), st.integers(0, 20)),
    "data.target_dim": st.integers(0, 3), "data.input_dim": st.one_of(st.just("width"),
                                                                       st.integers(0, 4)),
    "training.steps": st.integers(0, 8), "training.batch": st.one_of(st.just("full"),
                                                                     st.integers(0, 5)),
    "training.batch_seed": st.integers(-1, 2 ** 64), "training.optimizer": st.just("gd"),
    "training.lr": st.floats(-10, 10), "x.kind": st.sampled_from(
        ["lr", "lr_all", "offset", "init_offset", "momentum"]),
    "x.layer": st.integers(-1, 3), "x.scale": st.sampled_from(["log", "linear", "ln"]),
    "x.log10": st.lists(st.one_of(st.floats(-320, 320), st.integers(-10 ** 7, 10 ** 7)),
                        min_size=1, max_size=3).map(sorted),
    "y.lo": BOUND, "y.hi": BOUND, "grid.resolution": st.one_of(
        st.integers(1, 6), st.lists(st.integers(1, 6), min_size=2, max_size=2)),
    "dtype": st.sampled_from(["float32", "float64", "float16"]),
    "scheme": st.sampled_from(["legacy", "default"]), "seed": st.integers(-1, 2 ** 64),
    "name": st.text(max_size=6), "grid.tile": st.integers(1, 8), "nonsense.key": SCALARS,
    "system.kind": st.sampled_from(["training", "mandelbrot", "julia", "newton", "lorenz"]),
    "system.max_iter": st.integers(0, 50), "system.root": st.integers(-1, 3),
    "system.c": st.lists(st.one_of(BOUND, st.integers().map(lambda e: f"1e{e}")), max_size=3),
    "data.task": st.sampled_from(["random_regression", "image_fit", "digits"]),
    "data.image": st.sampled_from(["mandelbrot", "sample", "missing.png", "x.txt"]),
    "data.fourier_scale": st.floats(allow_nan=True, allow_infinity=True),
}
ENTRY = st.one_of(*(st.tuples(st.just(key), st.one_of(values, values, GARBAGE))
                    for key, values in PLAUSIBLE.items()))


def _toml(value) -> str:
    """A value as TOML text (for writing generated job files)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(_toml, value)) + "]"
    return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"


CHEAP = ["--set", "grid.resolution=4", "--set", "training.steps=8"]


def _runs_or_one_line(capsys, argv):
    """The property: exit 0, or exit 2 with one line naming the problem; never a traceback."""
    status, _, err = _main(capsys, *argv)
    event(f"{argv[0]} exit {status}")  # --hypothesis-show-statistics counts both outcomes
    if status != 0:
        assert status == 2 and len(err) == 1 and err[0].startswith("fractalsweep: error: "), err


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("generated")


@PROPERTY
@given(st.lists(ENTRY, max_size=4))
def test_generated_job_files(capsys, scratch, entries):
    tables: dict = {}
    for key, value in entries:
        section, _, name = key.rpartition(".")
        tables.setdefault(section, {})[name] = value
    lines = [f"{k} = {_toml(v)}" for k, v in tables.pop("", {}).items()]
    for section, values in tables.items():
        lines += [f"[{section}]", *(f"{k} = {_toml(v)}" for k, v in values.items())]
    job = scratch / f"{uuid.uuid4().hex}.toml"
    job.write_text("\n".join(lines) + "\n")
    # the job as written, then computed for real (at a cheap size) where it is valid
    _runs_or_one_line(capsys, ["run", job, "--dry-run"])
    _runs_or_one_line(capsys, ["run", job, "--store", scratch / f"{job.stem}.zarr", *CHEAP,
                               "--scheduler", "sync", "--quiet", "--no-render"])


@PROPERTY
@given(st.binary(max_size=64))
def test_generated_bytes_as_a_job_file(capsys, scratch, data):
    job = scratch / f"{uuid.uuid4().hex}.toml"
    job.write_bytes(data)
    _runs_or_one_line(capsys, ["run", job, "--dry-run"])


@PROPERTY
@given(st.lists(st.one_of(ENTRY.map(lambda e: f"{e[0]}={_toml(e[1])}"), st.text(max_size=12)),
                max_size=3))
def test_generated_set_values(capsys, scratch, settings_):
    sets = [arg for item in settings_ for arg in ("--set", item)]
    _runs_or_one_line(capsys, ["run", QUICK, *sets, "--dry-run"])
    _runs_or_one_line(capsys, ["run", QUICK, "--store", scratch / f"{uuid.uuid4().hex}.zarr",
                               *sets, *CHEAP, "--scheduler", "sync", "--quiet", "--no-render"])


NUMBERS = st.one_of(
    BOUND.map(repr), BOUND.map(repr), st.floats(-3, 6).map(repr),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-400, 400).map(lambda e: f"1e{e}"), st.integers().map(lambda e: f"1e{e}"),
    st.decimals(allow_nan=False, allow_infinity=False, places=30).map(str),
    st.sampled_from(["0", "-1", "30", "300", "abc", "", "1e-3", "1000000"]))


@PROPERTY
@given(mode=st.sampled_from(["box", "centre", "auto"]), numbers=st.lists(NUMBERS, min_size=6,
                                                                          max_size=6),
       log10=st.booleans(), force=st.booleans(), preview=st.booleans())
def test_generated_zoom_windows(capsys, tiny_store, mode, numbers, log10, force, preview):
    how = {"box": ["--box", *numbers[:4]], "centre": ["--centre", *numbers[:2], "--width",
                                                      numbers[2]],
           "auto": ["--auto"]}[mode]
    flags = ["--log10"] * log10 + ["--force"] * force + ["--float32-preview"] * preview
    _runs_or_one_line(capsys, ["zoom", tiny_store, *how, *flags, "--resolution", "5",
                               "--scheduler", "sync", "--quiet", "--no-render"])


NOT_BOOLS = st.one_of(GARBAGE, st.none(), st.just(np.array([1, 2]))).filter(
    lambda value: not isinstance(value, bool))
FLAGGED = {  # API calls taking a flag: each refused before any work unless True or False
    "repair": lambda store, out, v: store.verify(repair=v),
    "force": lambda store, out, v: store.zoom(centre=(10, 100), width=1, force=v),
    "log10": lambda store, out, v: store.zoom(centre=(1, 2), width=0.5, log10=v),
    "auto": lambda store, out, v: store.zoom(auto=v),
    "ease": lambda store, out, v: store.animate(out, ease=v),
    "overlay": lambda store, out, v: store.animate(out, overlay=v),
    "progress": lambda store, out, v: store.animate(out, progress=v),
}


@PROPERTY
@given(name=st.sampled_from(sorted(FLAGGED)), value=NOT_BOOLS)
def test_generated_flags_are_true_or_false_or_refused(tiny_store, scratch, name, value):
    with pytest.raises(fs.ConfigError) as error:
        FLAGGED[name](fs.open(str(tiny_store)), scratch / "a.gif", value)
    assert str(error.value) == f"{name} = {value!r}: expected True or False"
    assert not (scratch / "a.gif").exists()


@PROPERTY
@given(cmap=st.one_of(GARBAGE, st.sampled_from(["paper", "classes", "magma", "Viridis"]),
                      st.just(np.array([1, 2]))))
def test_generated_cmaps_draw_or_are_refused_in_one_line(tiny_store, scratch, cmap):
    import matplotlib

    out = scratch / f"{uuid.uuid4().hex}.png"
    named = isinstance(cmap, str) and cmap in (*matplotlib.colormaps, "paper", "classes")
    try:
        fs.open(str(tiny_store)).level(0).render(out, cmap=cmap)
    except fs.ConfigError as error:
        assert not named and not out.exists(), (cmap, error)
        assert str(error).startswith(f"unknown cmap {cmap!r}; valid")
    else:
        assert named and out.stat().st_size > 0, cmap


def test_a_store_made_by_the_properties_is_still_whole(tiny_store):
    report = fs.open(str(tiny_store)).verify()
    assert report.problems == [], report.problems
    assert zarr.open_group(str(tiny_store), mode="r")["levels/0/tiles"][:].all()
    assert resolve(fs.open(str(tiny_store)).config.to_dict()) == fs.open(str(tiny_store)).config


def test_a_job_window_its_dtype_cannot_resolve_is_refused_unless_forced(tmp_path, capsys):
    """run computed a window whose columns were all one float64 number (exit 0, -1.7 decades
    left in info) where a zoom to the same window is refused."""
    path, job = tmp_path / "c.zarr", tmp_path / "narrow.toml"
    job.write_text('[training]\nsteps = 10\n[grid]\nresolution = 4\n'
                   '[x]\nlo = "13.3"\nhi = "13.300000000000001"\n')
    run = ["run", job, "--store", path, "--scheduler", "sync", "--quiet", "--no-render"]
    for args in ([], ["--dry-run"]):
        _refused(capsys, *run, *args,
                 words=("x: float64 keeps 4 pixels distinct", "use --force", "collide"))
    assert not path.exists()
    with pytest.raises(fs.PrecisionError, match="x: float64 keeps 4 pixels"):
        fs.run(job, path, execution=Execution(scheduler="sync"), progress=False)
    assert _main(capsys, *run, "--dry-run", "--force")[0] == 0
    assert _main(capsys, *run, "--force")[0] == 0
    dive = ["dive", job, "--store", tmp_path / "d.zarr", "--decades", "1", *run[4:], "--set",
            "grid.resolution=17"]  # the least a dive targets in
    _refused(capsys, *dive, words=("the job's window: x: float64 keeps 17 pixels",
                                   "'fractalsweep run --force' (the dive then resumes it)"))
    status, out, _ = _main(capsys, *run)  # the store's window passed, forced, when made
    assert status == 0 and "0 tiles computed, 1 already done" in out
