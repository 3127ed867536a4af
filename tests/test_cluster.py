"""The Dask path against the in-process path, bit for bit, on a real LocalCluster."""

import numpy as np
import zarr
from distributed import LocalCluster

from fractalsweep.config import resolve
from fractalsweep.execute import WORKER_ENV, run_sweep

JOB = {"training": {"steps": 40}, "x": {"log10": [-1, 4]}, "y": {"log10": [-1, 4]},
       "grid": {"resolution": 12, "tile": 5}}


def _score(path):
    group = zarr.open_group(path, mode="r")["levels/0"]
    return {n: group[n][:] for n in ("score", "first_nonfinite", "final_loss", "tiles")}


def test_local_cluster_matches_in_process(tmp_path):
    cfg = resolve(JOB)
    run_sweep(str(tmp_path / "sync.zarr"), cfg, scheduler="sync", progress=False)
    report = run_sweep(str(tmp_path / "dask.zarr"), cfg, workers=2, progress=False)
    assert report.computed == 9 and report.dashboard
    assert len({s["host"] for s in report.summaries}) >= 1
    sync, dask = _score(str(tmp_path / "sync.zarr")), _score(str(tmp_path / "dask.zarr"))
    for name in sync:
        np.testing.assert_array_equal(dask[name], sync[name])


def test_existing_scheduler_address(tmp_path):
    cfg = resolve(JOB)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=":0", env=WORKER_ENV) as cluster:
        report = run_sweep(str(tmp_path / "a.zarr"), cfg, scheduler=cluster.scheduler_address,
                           progress=False)
    assert report.computed == 9
    assert not np.isnan(_score(str(tmp_path / "a.zarr"))["score"]).any()
