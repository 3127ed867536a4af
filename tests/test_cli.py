"""The command line, run as a user would: real processes, real files, exit codes."""

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest
import zarr

import fractalsweep as fs
from fractalsweep import precision

SMALL = ["--set", "grid.resolution=8", "--tile", "4", "--set", "training.steps=20"]


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "fractalsweep", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=600)


def _one_line_error(result, *words):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]


def test_run_info_render(tmp_path, job_dir):
    store = tmp_path / "q.zarr"
    r = cli("run", job_dir / "quickstart.toml", "--store", store, "--scheduler", "sync", *SMALL)
    assert r.returncode == 0, r.stderr
    assert "4 tiles computed" in r.stdout
    png = matplotlib.image.imread(tmp_path / "q.png")
    assert png.shape[0] > 300 and png.shape[1] > 300

    again = cli("run", job_dir / "quickstart.toml", "--store", store, "--scheduler", "sync",
               "--no-render", *SMALL)
    assert "0 tiles computed, 4 already done" in again.stdout

    info = cli("info", store, "--json")
    levels = json.loads(info.stdout)["levels"]
    assert levels[0]["tiles_done"] == levels[0]["tiles"] == 4
    level = fs.open(store).level(0)  # the guard's own estimate, with its O(pixels) check
    left = precision.precision_check(level.view, level.resolution, level.dtype)
    assert levels[0]["decades_left"] == left["decades_left"] > 9
    table = cli("info", store).stdout
    assert re.search(r"^\s+0\s+job\s+8x8\s+float64\s+4/4\s.*\s"
                     + f"{left['decades_left']:.1f}\\s", table, re.MULTILINE), table
    assert "decades left" in table

    out = tmp_path / "classes.png"
    r = cli("render", store, "--cmap", "classes", "--out", out)
    assert r.returncode == 0 and out.exists()


def test_the_installed_command_runs_and_exits_with_the_command_s_status(tmp_path, job_dir):
    """The console script ``pip install`` makes, which the README runs, not ``python -m``."""
    command = os.path.join(os.path.dirname(sys.executable), "fractalsweep")
    assert os.access(command, os.X_OK), f"{command}: not installed (pip install -e .)"

    def run(*args):
        return subprocess.run([command, *map(str, args)], capture_output=True, text=True,
                              timeout=600)

    store = tmp_path / "q.zarr"
    r = run("run", job_dir / "quickstart.toml", "--store", store, "--scheduler", "sync",
            "--no-render", *SMALL)
    assert r.returncode == 0, r.stderr
    assert "4 tiles computed" in r.stdout
    assert json.loads(run("info", store, "--json").stdout)["levels"][0]["tiles_done"] == 4
    _one_line_error(run("run", job_dir / "quickstart.toml", "--set", "training.stepz=1"),
                    "training.stepz", "steps")


def test_explore_without_a_display_says_so(tmp_path, job_dir, monkeypatch):
    store = tmp_path / "q.zarr"
    cli("run", job_dir / "quickstart.toml", "--store", store, "--scheduler", "sync",
       "--no-render", *SMALL)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    _one_line_error(cli("explore", store, "--scheduler", "sync"), "needs an interactive", "Agg", "ipympl")


@pytest.mark.parametrize("override,words", [
    ("model.activation=swish", ["swish", "tanh, relu, identity"]),
    ("grid.resolution=1", ["grid.resolution", ">= 2"]),
    ("training.steps=0", ["training.steps"]),
    ("x.log10=[1]", ["x.log10", "[lo, hi]"]),
    ("x.lo=1", ["x:", "either as lo/hi", "or as log10"]),
    ("x.kind=momentum", ["momentum", "lr_all"]),
    ("model.depht=3", ["model.depht", "depth"]),
    ("grid.tile=8", ["grid.tile", "--tile"]),
    ("nonsense", ["section.key=value"]),
])
def test_bad_input_is_one_line_exit_2(tmp_path, job_dir, override, words):
    r = cli("run", job_dir / "quickstart.toml", "--store", tmp_path / "x.zarr", "--set", override)
    _one_line_error(r, *words)
    assert not (tmp_path / "x.zarr").exists()


def test_a_config_its_kernel_cannot_train_is_refused_before_any_work(tmp_path, job_dir):
    """An explicit ``--kernel pallas`` for a config the fused kernel does not support, or a
    double-double sweep beyond that kernel's family, is one line from the driver (a dry run
    too), not a failure of every tile on the workers; an existing store keeps its pixels."""
    store = tmp_path / "k.zarr"
    deep = ["--kernel", "pallas", "--set", "model.depth=3", "--store", store]
    _one_line_error(cli("run", job_dir / "quickstart.toml", *deep, "--dry-run"),
                    "kernel = 'pallas'", "model.depth = 3", "'xla' or 'auto'")
    _one_line_error(cli("run", job_dir / "quickstart.toml", "--set", "dtype=double-double",
                        "--set", "model.biases=true", "--dry-run"), "model.biases = true")
    _one_line_error(cli("run", job_dir / "quickstart.toml", *deep), "model.depth = 3")
    assert not store.exists()
    cli("run", job_dir / "quickstart.toml", "--store", store, "--scheduler", "sync",
        "--no-render", *SMALL, "--set", "model.depth=3")
    before = zarr.open_group(str(store), mode="r")["levels/0/score"][:]
    _one_line_error(cli("zoom", store, "--box", "0", "3", "0", "3", "--log10",
                        "--kernel", "pallas"), "model.depth = 3")
    root = zarr.open_group(str(store), mode="r")
    assert list(root["levels"].group_keys()) == ["0"]
    assert (root["levels/0/score"][:] == before).all()


def test_missing_job_and_foreign_store(tmp_path, job_dir):
    _one_line_error(cli("run", tmp_path / "missing.toml"), "not found")
    _one_line_error(cli("run", job_dir / "paper" / "tanh.toml", "--set", "x.lo=-3"), "positive")
    store = tmp_path / "s.zarr"
    cli("run", job_dir / "quickstart.toml", "--store", store, "--scheduler", "sync",
       "--no-render", *SMALL)
    before = zarr.open_group(str(store), mode="r")["levels/0/score"][:]
    r = cli("run", job_dir / "quickstart.toml", "--store", store, "--scheduler", "sync", *SMALL,
           "--set", "model.activation=relu")
    _one_line_error(r, "another configuration", "model.activation")
    after = zarr.open_group(str(store), mode="r")["levels/0/score"][:]
    assert (before == after).all()
    r = cli("run", job_dir / "quickstart.toml", "--store", store, "--scheduler", "sync", *SMALL,
            "--no-render", "--set", "name='renamed'")  # a label, not the sweep: resumed
    assert r.returncode == 0 and "0 tiles computed" in r.stdout, r.stdout + r.stderr
    assert zarr.open_group(str(store), mode="r").attrs["fractalsweep"]["config"]["name"] == (
        "quickstart")
    _one_line_error(cli("render", tmp_path / "nowhere.zarr"), "no fractalsweep store")
    _one_line_error(cli("render", store, "--level", "3"), "no level 3")
    _one_line_error(cli("render", store, "--cmap", "nocmap"), "nocmap")


def test_help_explains_every_command():
    r = cli("--help")
    assert r.returncode == 0
    for command in ("run", "zoom", "ladder", "dive", "animate", "explore", "dimension",
                    "status", "render", "info", "bench"):
        assert command in r.stdout
        sub = cli(command, "--help")
        assert sub.returncode == 0 and "usage" in sub.stdout


def test_dry_run_prints_the_job_script_and_the_cost(tmp_path, job_dir):
    profile = tmp_path / "p.toml"
    logs = tmp_path / "new" / "logs"  # dask-jobqueue makes it as it builds a job
    profile.write_text('system = "pbs"\nqueue = "gpu"\nwalltime = "02:00:00"\n'
                       'net_steps_per_second = 1e6\nenv_setup = ["module load cuda"]\n'
                       f'log_directory = "{logs}"\n')
    r = cli("run", job_dir / "paper" / "tanh.toml", "--cluster", profile, "--dry-run",
           "--store", tmp_path / "t.zarr")
    assert r.returncode == 0, r.stderr
    assert "#PBS -q gpu" in r.stdout and "module load cuda" in r.stdout
    assert f"#PBS -e {logs}/" in r.stdout and not (tmp_path / "new").exists()
    assert "--resources GPU=1" in r.stdout and "--lifetime 6600s" in r.stdout
    assert 'XLA_PYTHON_CLIENT_PREALLOCATE="false"' in r.stdout
    assert 'export MALLOC_MMAP_THRESHOLD_="33554432"' in r.stdout  # over distributed's trim
    assert "256x256 pixels x 1000 steps = 6.55e+07 net-steps in 4 tiles of 128x128" in r.stdout
    assert "estimated GPU-hours: 0.0182" in r.stdout
    assert ("estimated wall time: 0:01:06 of training, 4 tiles on 1 GPU, up to 4 each"
            in r.stdout)  # 6.55e7 net-steps at 1e6 per second on the profile's one job
    assert not (tmp_path / "t.zarr").exists()

    profile.write_text('system = "lsf"\n')
    _one_line_error(cli("run", job_dir / "quickstart.toml", "--cluster", profile, "--dry-run"),
                    "lsf", "slurm, pbs")
    profile.write_text('queue = "gpu"\ngpus = 2\n')
    _one_line_error(cli("run", job_dir / "quickstart.toml", "--cluster", profile, "--dry-run"),
                    "'gpus'", "gpus_per_job")


def test_version():
    from importlib.metadata import version

    r = cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"fractalsweep {version('fractalsweep')}"


def test_the_command_uses_the_compilation_cache_unless_told_otherwise(tmp_path, job_dir):
    """The CLI process compiles from the workers' cache (default under $TMPDIR); an
    environment naming JAX's own cache directory is obeyed instead."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}

    def run(name, **extra):
        result = subprocess.run(
            [sys.executable, "-m", "fractalsweep", "run", str(job_dir / "quickstart.toml"),
             "--store", str(tmp_path / name), "--scheduler", "sync", "--no-render", *SMALL],
            env={**env, **extra}, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr

    def entries(folder):
        return sorted(p.name for p in folder.rglob("*") if p.is_file())

    run("a.zarr", TMPDIR=str(tmp_path))
    first = entries(tmp_path / "fractalsweep-jax-cache")
    assert first, "nothing was cached"
    run("b.zarr", TMPDIR=str(tmp_path))
    assert entries(tmp_path / "fractalsweep-jax-cache") == first, "compiled again"
    run("c.zarr", TMPDIR=str(tmp_path), JAX_COMPILATION_CACHE_DIR=str(tmp_path / "own"),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    assert entries(tmp_path / "own") and entries(tmp_path / "fractalsweep-jax-cache") == first


def test_every_command_and_option_is_in_docs_cli_md():
    from fractalsweep.cli import _parser

    text = (Path(__file__).parents[1] / "docs" / "cli.md").read_text()
    headings = re.findall(r"^## ([a-z]+(?:, [a-z]+)*)$", text, re.MULTILINE)
    sections = {name for heading in headings for name in heading.split(", ")}
    commands, = (a.choices for a in _parser()._actions
                 if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {option}" for name, sub in commands.items() for a in sub._actions
               for option in a.option_strings
               if option.startswith("--") and option != "--help" and option not in text]
    assert missing == [] and set(commands) <= sections


SCRIPTS = sorted((Path(__file__).parents[1] / "docs" / "scripts").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_the_docs_scripts_import(script, monkeypatch):
    """The scripts whose commands the docs give import what they use: paper_agreement.py
    imported a name paper_comparison.py no longer had, and failed before its --help."""
    import importlib.util

    monkeypatch.syspath_prepend(str(script.parent))  # they import one another
    spec = importlib.util.spec_from_file_location(f"docs_script_{script.stem}", script)
    try:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    except ModuleNotFoundError as exc:
        if exc.name != "triton":  # their own docstring's "pip install triton"
            raise
        pytest.skip("needs the triton package (pip install triton; not a dependency)")
