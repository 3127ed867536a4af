import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def job_dir():
    return ROOT / "jobs"


#: a tiny store for the web explorer's tests (tests/test_serve*.py): 17x17 pixels, 4 tiles
SERVE_JOB = {"training": {"steps": 30}, "x": {"log10": [-1, 4]}, "y": {"log10": [-1, 4]},
             "grid": {"resolution": 17}}


@pytest.fixture(scope="session")
def serve_store(tmp_path_factory):
    """SERVE_JOB computed once per session, in this process."""
    import fractalsweep as fs

    path = tmp_path_factory.mktemp("serve") / "base.zarr"
    fs.run(SERVE_JOB, str(path), execution=fs.Execution(scheduler="sync", tile=8),
           progress=False)
    return path


@pytest.fixture
def serve_path(serve_store, tmp_path):
    """A fresh copy of the serve store for each test (tests add levels): ``tmp_path/s.zarr``."""
    copy = tmp_path / "s.zarr"
    shutil.copytree(serve_store, copy)
    return str(copy)
