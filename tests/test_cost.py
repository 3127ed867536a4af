"""Cost estimates scale with the network's real size, and refuse what cannot fit."""

import json
import os
import subprocess
import sys

import pytest

from fractalsweep import Execution, bench, cluster, cost, ddkernel, fused, measurements
from fractalsweep.config import resolve
from fractalsweep.errors import ConfigError
from fractalsweep.kernel import group_size


def test_flops_follow_the_weights_rows_and_batch():
    base = cost.flops_per_net_step(resolve({}))
    # 272 rows; per row the products X W0 (16 x 16) and h w1 (16 x 1) forward, their weight
    # gradients backward and the signal through w1 (not through W0: X is data); 16 tanh
    # forward and their derivative from the output backward
    products = 2 * (256 + 16) + 2 * (256 + 16) + 2 * 16
    assert base == 272 * (products + cost.ACTIVATION_FLOPS * 16 + 2 * 16) == 400_384
    wide = resolve({"model": {"width": 64}})  # weights grow 15x (4160), rows (= params) too
    assert cost.flops_per_net_step(wide) > 150 * base
    minibatch = resolve({"training": {"batch": 16}})
    assert cost.flops_per_net_step(minibatch) < base  # the gradient on 16 rows, not 272


def test_a_network_that_cannot_fit_is_refused_before_anything_runs(job_dir):
    r = subprocess.run([sys.executable, "-m", "fractalsweep", "run", job_dir / "paper" / "tanh.toml",
                        "--dry-run", "--set", "model.width=100000000"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "GB to train" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    with pytest.raises(ConfigError, match="make the network or the data smaller"):
        cost.estimate(resolve({"model": {"width": 100_000}}), "w.zarr", Execution())


def test_a_dry_run_refuses_gpus_the_machine_does_not_show(job_dir, monkeypatch, capsys):
    """It printed a GPU plan for --gpus 0 on a machine without GPUs; the run refuses them."""
    from fractalsweep import cli

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    status = cli.main(["run", str(job_dir / "quickstart.toml"), "--gpus", "0", "--dry-run"])
    out, err = capsys.readouterr()
    assert status == 2 and not out and err.count("\n") == 1, out + err
    assert "gpus = 0: no GPU 0 on this machine (its GPUs: none" in err, err


def test_hours_scale_a_saved_measurement_by_flops(tmp_path, monkeypatch):
    """From the bench's rate per CPU-second on a CPU: a CPU worker is one core, while the
    bench's wall-clock rate counts every core XLA's threads used."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    saved = tmp_path / "fractalsweep" / "bench.json"
    saved.parent.mkdir()
    base = resolve({})
    saved.write_text(json.dumps({"device": "cpu:0", "device_kind": "cpu", "rows": [
        {"dtype": "float64", "method": "kernel", "net_steps_per_s": 1.8e5,
         "net_steps_per_cpu_s": 1e5, "job": {}}]}))
    job = {"grid": {"resolution": 100}, "training": {"steps": 360}}
    where = (str(tmp_path / "s.zarr"), Execution(workers=2, gpus=()))
    lines = cost.estimate(resolve(job), *where)
    assert "estimated worker-hours: 0.01 at 1e+05 net-steps/s" in lines[-3]  # 3.6e6 / 1e5 s
    assert "1e+05 float64 net-steps per CPU-second on cpu" in lines[-3]
    # 49 tiles on 2 workers (36 of 16 x 16, the rest cut): the busier may get 25 full ones,
    # 25 x 256 pixels x 360 steps at 1e5 net-steps per second
    assert lines[-2].startswith("estimated wall time: 23 s of training, 49 tiles on 2 "
                                "workers, up to 25 each")
    assert lines[-1].startswith("level 0: 10,000 pixels in 49 tiles")  # 7 x 7 of 16 px
    # 4 workers on 2 cores take turns, each at half a core: 13 tiles on the busiest,
    # 13 x 256 x 360 / 1e5 s x 2 (it was estimated as if each had a core: 12 s)
    monkeypatch.setattr(cluster, "usable_cores", lambda: 2)
    assert cost.estimate(resolve(job), where[0], Execution(workers=4, gpus=()))[-2].startswith(
        "estimated wall time: 24 s of training, 49 tiles on 4 workers sharing 2 cores, up to "
        "13 each")
    for elsewhere in (Execution(scheduler="tcp://127.0.0.1:8786"), Execution(scheduler="sync")):
        assert not any(line.startswith("estimated wall time")
                       for line in cost.estimate(resolve(job), where[0], elsewhere))
    wide = cost.estimate(resolve({**job, "model": {"width": 32}}), *where)[-3]
    rate = 1e5 * cost.flops_per_net_step(base) / cost.flops_per_net_step(
        resolve({**job, "model": {"width": 32}}))
    assert f"at {rate:,.3g} net-steps/s" in wide and "scaled by flop per net-step" in wide
    dd = cost.estimate(resolve({**job, "dtype": "double-double"}), *where)
    assert f"1/{cost.DOUBLE_DOUBLE_COST} for double-double" in dd[-3]
    assert "for 2 networks at once" in dd[1]  # its own kernel's calls, not float64's 64
    one = cost.estimate(resolve(job), where[0], Execution(workers=2, tile=128))[0]
    assert "net-steps in 1 tile of 100x100;" in one  # not "1 tiles of 128x128"


def test_a_bench_saved_before_the_flop_count_changed_is_not_scaled_from(tmp_path, monkeypatch):
    """Rows of before 0.9.0 name no job, and counted 539,648 flop per baseline net-step (the
    first layer's signal to the data included): scaled by today's count, the baseline's
    estimate would have been 1.35x too fast."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    saved = tmp_path / "fractalsweep" / "bench.json"
    saved.parent.mkdir()
    saved.write_text(json.dumps({"device": "cpu:0", "device_kind": "cpu", "rows": [
        {"dtype": "float64", "method": "kernel", "net_steps_per_s": 1e5,
         "net_steps_per_cpu_s": 1e5, "flops_per_net_step": 539648}]}))
    assert measurements.saved_measurement("float64") is None
    lines = cost.estimate(resolve({}), str(tmp_path / "s.zarr"), Execution(workers=2, gpus=()))
    assert any(line.startswith("estimated worker-hours: unknown (run 'fractalsweep bench'")
               for line in lines), lines
    rows = bench.run(pixels=8, group=8, steps=3, repeats=1, dtypes=("float64",),
                     methods=("kernel",), kernels=("xla",))
    measurements.save(rows)
    assert measurements.saved_measurement("float64")[2] == cost.flops_per_net_step(
        resolve({})) == 400_384


def test_estimates_never_scale_from_the_fused_kernel_interpreted(tmp_path, monkeypatch):
    """Off a GPU the fused kernel runs in interpret mode (a third of the XLA kernel's rate
    here): a bench of it is shown, not saved, and the saved measurement stays."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    rows = bench.run(pixels=8, group=8, steps=3, repeats=1, dtypes=("float64",),
                     methods=("kernel",), kernels=("xla", "pallas"))
    assert [r["kernel"] for r in rows] == ["xla", "pallas"]
    kept = ["xla"] if fused.interpret_here() else ["xla", "pallas"]
    assert [r["kernel"] for r in json.loads(measurements.save(rows).read_text())["rows"]] == kept
    rate = measurements.saved_measurement("float64")[0]
    assert rate in (rows[0]["net_steps_per_cpu_s"], rows[0]["net_steps_per_s"])
    if fused.interpret_here():
        assert measurements.save(rows[1:]) is None
        assert measurements.saved_measurement("float64")[0] == rate
    # and the table marks it: beside XLA's rate, an unmarked one read as the kernel's speed
    lines = bench.table(rows).splitlines()
    marked = fused.interpret_here()
    assert lines[1].split()[2] == "xla" and lines[2].split()[2] == "pallas" + "*" * marked
    assert ("* interpreted off a GPU" in lines[3]) == marked


def test_a_bench_of_one_dtype_keeps_the_others_saved_rates(tmp_path, monkeypatch):
    """Each dtype's rows replace only that dtype's saved ones, on the same kind of device."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))

    def rows(dtype, rate):
        return [{"dtype": dtype, "method": "kernel", "kernel": "xla", "net_steps_per_s": rate,
                 "net_steps_per_cpu_s": rate, "job": {}}]

    measurements.save(rows("float64", 100.0) + rows("float32", 200.0))
    measurements.save(rows("double-double", 1.0))
    assert [measurements.saved_measurement(d)[0] for d in ("float64", "float32", "double-double")] \
        == [100.0, 200.0, 1.0]
    measurements.save(rows("float64", 110.0))
    assert [measurements.saved_measurement(d)[0] for d in ("float64", "float32", "double-double")] \
        == [110.0, 200.0, 1.0]
    saved = json.loads(measurements.cache_file().read_text())
    assert all(r["measured"] for r in saved["rows"])
    saved["device_kind"] = "another device"  # rates of another device are not kept
    measurements.cache_file().write_text(json.dumps(saved))
    measurements.save(rows("float32", 300.0))
    assert measurements.saved_measurement("float64") is None
    assert measurements.saved_measurement("float32")[0] == 300.0


def test_a_double_double_bench_times_whole_calls(monkeypatch):
    """Its default pixels fill the kernel's group where that holds more than 64 (a GPU's
    1024), or the padding of the one call would be timed as work."""
    assert bench.default_pixels(dtype="double-double") == max(64, group_size(table=ddkernel.GROUP))
    monkeypatch.setattr(ddkernel, "GROUP", dict.fromkeys(ddkernel.GROUP, 1024))
    assert bench.default_pixels(dtype="double-double") == 1024


def test_a_double_double_bench_is_what_its_estimates_scale_from(tmp_path, monkeypatch):
    """The bench measures the double-double kernel when asked (its kernel methods only: the
    published method is float64); saved, double-double estimates scale from it instead of
    float64's rate over DOUBLE_DOUBLE_COST, and float64 estimates are not made from it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    rows = bench.run(pixels=16, steps=2, repeats=1, dtypes=("double-double",))
    assert [(r["dtype"], r["method"], r["kernel"], r["group"]) for r in rows] == [
        ("double-double", method, None, group_size(table=ddkernel.GROUP))
        for method in ("kernel", "kernel-no-exit")]
    assert all(r["net_steps_per_s"] > 0 for r in rows)
    measurements.save(rows)
    rate = measurements.saved_measurement("double-double")
    assert rate[0] in (rows[0]["net_steps_per_cpu_s"], rows[0]["net_steps_per_s"])
    assert rate[3] == "double-double" and measurements.saved_measurement("float64") is None
    job = {"grid": {"resolution": 16}, "training": {"steps": 10}}
    where = (str(tmp_path / "s.zarr"), Execution(workers=2, gpus=()))
    dd = " ".join(cost.estimate(resolve({**job, "dtype": "double-double"}), *where))
    assert "double-double net-steps" in dd and f"1/{cost.DOUBLE_DOUBLE_COST}" not in dd
    assert "estimated worker-hours: unknown" in " ".join(cost.estimate(resolve(job), *where))
    r = subprocess.run([sys.executable, "-m", "fractalsweep", "bench", "--dtype",
                        "double-double", "--method", "naive"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "naive method is float64 and float32 only" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2
                    or not fused.interpret_here(),
                    reason="needs a CPU device, thread affinity and two cores to keep to one")
def test_the_bench_measures_on_one_core_as_a_worker_trains(tmp_path, monkeypatch):
    """A process that may use every core trains at a fifth less per CPU-second than a worker
    kept to its core, so the bench measures in a new process kept to one (with this
    fractalsweep, not one in the working directory), and a bad setting found there comes
    back as the one-line error it is."""
    (tmp_path / "fractalsweep").mkdir()
    (tmp_path / "fractalsweep" / "__init__.py").write_text("raise ImportError('not this one')")
    monkeypatch.chdir(tmp_path)
    allowed = os.sched_getaffinity(0)
    rows = bench.run(pixels=8, group=8, steps=3, repeats=1, dtypes=("float64",),
                     methods=("kernel",))
    assert [r["core"] for r in rows] == [min(allowed)] and os.sched_getaffinity(0) == allowed
    assert f"on core {min(allowed)} alone" in bench.table(rows)
    with pytest.raises(ConfigError, match=r"^model\.depth = 0: must be >= 1$"):
        bench.run(pixels=8, group=8, steps=3, repeats=1, job={"model": {"depth": 0}},
                  dtypes=("float64",), methods=("kernel",))


def test_gpu_estimates_scale_from_the_gpu_measurement(tmp_path, monkeypatch, job_dir):
    """GPU workers (a profile's, or a local cluster's) without a rate of their own, on a
    machine whose bench ran on a CPU (or never), are estimated from the recorded GPU rate of
    the kernel a GPU would use, not a CPU's; the wall time counts one worker per job (the
    most jobs, adaptive) or per local GPU."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    job = {"grid": {"resolution": 128}, "training": {"steps": 1000}}
    device, rates = cost.GPU_REFERENCE
    adaptive = tmp_path / "adaptive.toml"
    adaptive.write_text((job_dir / "clusters" / "slurm-gpu.toml").read_text().replace(
        "adaptive = false", "adaptive = true\nmax_jobs = 8"))
    for gpus, workers in ((Execution(cluster=str(job_dir / "clusters" / "slurm-gpu.toml")), 4),
                          (Execution(cluster=str(adaptive)), 8), (Execution(gpus=("0", "1")), 2)):
        for extra, kernel in (({}, "pallas"), ({"model": {"depth": 3}}, "xla"),
                              ({"dtype": "float32"}, "pallas")):
            cfg = resolve({**job, **extra})
            lines = cost.estimate(cfg, str(tmp_path / "s.zarr"), gpus)
            line = next(x for x in lines if x.startswith("estimated GPU-hours"))
            rate = rates[kernel, cfg.dtype] * cost.flops_per_net_step(resolve({})) \
                / cost.flops_per_net_step(cfg)
            hours = 128 * 128 * 1000 / rate / 3600
            assert line.startswith(f"estimated GPU-hours: {hours:.3g} at {rate:,.3g}"), line
            assert f"on {device}, {kernel} kernel" in line
            assert "16384 networks at once" in lines[-4]  # a GPU's call, one tile of 128x128
            assert f"of training, 1 tile on {workers} GPUs, up to 1 each" in lines[-2]


def test_the_dry_run_in_docs_cluster_md_is_the_one_printed(tmp_path, job_dir):
    """Its estimate lines, from the recorded GPU rate (no bench saved here), as printed."""
    text = (job_dir.parent / "docs" / "cluster.md").read_text()
    block = text.split("$ fractalsweep run jobs/paper/tanh.toml --cluster "
                       "jobs/clusters/slurm-gpu.toml --dry-run\n")[1].split("```")[0]
    documented = [line for line in block.splitlines() if line.startswith(("store ", "memory",
                                                                          "estimated"))]
    r = subprocess.run([sys.executable, "-m", "fractalsweep", "run", "jobs/paper/tanh.toml",
                        "--cluster", "jobs/clusters/slurm-gpu.toml", "--dry-run"],
                       capture_output=True, text=True, timeout=120, cwd=job_dir.parent,
                       env=os.environ | {"XDG_CACHE_HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert len(documented) == 4 and all(line in r.stdout.splitlines() for line in documented)


@pytest.mark.parametrize("job", [{"grid": {"resolution": [10, 9]}},
                                 {"grid": {"resolution": 8}, "ensemble": {"seeds": 2}}])
def test_a_level_s_estimated_files_are_the_files_it_writes(tmp_path, job):
    """Chunks and the metadata of the level and of each of its arrays (the count left out
    the metadata: 8 files for a level of 17)."""
    from fractalsweep import api, limits

    cfg = resolve({**job, "training": {"steps": 5}})
    api.run(cfg, tmp_path / "s.zarr", execution=Execution(scheduler="sync", tile=4),
            progress=False)
    written = [p for p in (tmp_path / "s.zarr" / "levels" / "0").rglob("*") if p.is_file()]
    assert limits.level_estimate(cfg, cfg.grid.resolution, 4, new_store=False).files \
        == len(written)
    # and bytes: an upper bound on the blocks of every file and folder of the new store
    store = tmp_path / "s.zarr"
    on_disk = sum(p.stat().st_blocks * 512 for p in (store, *store.rglob("*")))
    estimated = limits.level_estimate(cfg, cfg.grid.resolution, 4, new_store=True).disk_bytes
    assert on_disk <= estimated < 2 * on_disk, (on_disk, estimated)
    tiles = limits.tiles_of(cfg.grid.resolution, 4)  # a dry run on it says what is left
    again = cost.estimate(cfg, str(store), Execution(scheduler="sync", tile=4))[0]
    assert again.startswith(f"the store holds level 0 with {tiles} of {tiles} tiles done: a run "
                            "computes the 0 missing")
