"""Damage found, named and repaired: real stores on disk, damaged as a disk or a person would.

Each test copies one clean store, damages it, and checks that `verify` names the damage,
that readers refuse with one line instead of a traceback or a silent hole, and that
`verify --repair` then `resume` recompute exactly the damaged tiles, bit-identical to the
clean store.
"""

import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import zarr

import fractalsweep as fs
from fractalsweep import Execution, StoreError, cli, store
from fractalsweep.config import resolve

TILE = 4
SYNC = Execution(scheduler="sync", tile=TILE)
JOB = {"training": {"steps": 30}, "x": {"log10": [-1, 4]}, "y": {"log10": [-1, 4]},
       "grid": {"resolution": [10, 9]}}  # 3 x 3 tiles, the last row and column cut
PIXELS = ("score", "first_nonfinite", "final_loss", "reused")


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    path = tmp_path_factory.mktemp("clean") / "clean.zarr"
    fs.run(resolve(JOB), str(path), execution=SYNC, progress=False)
    return path


@pytest.fixture
def damaged(clean, tmp_path):
    path = tmp_path / "s.zarr"
    shutil.copytree(clean, path)
    return path


def _bits(path):
    level = zarr.open_group(str(path), mode="r")["levels/0"]
    return {name: level[name][:].tobytes() for name in (*PIXELS, "tiles", "x", "y")}


def _overwrite_middle(chunk, size=8):
    data = bytearray(chunk.read_bytes())
    middle = len(data) // 2
    data[middle:middle + size] = bytes(255 - b for b in data[middle:middle + size])
    chunk.write_bytes(bytes(data))


def _main(capsys, *args):
    status = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def _repair_and_resume(path, capsys, clean):
    status, out, _ = _main(capsys, "verify", path, "--repair")
    assert status == 0 and "repaired: level 0" in out, out
    status, out, _ = _main(capsys, "resume", path, "--scheduler", "sync", "--quiet")
    assert status == 0, out
    assert _main(capsys, "verify", path)[0] == 0
    assert _bits(path) == _bits(clean)
    return out


def test_a_clean_store_verifies(clean, capsys):
    status, out, err = _main(capsys, "verify", clean)
    assert status == 0 and "0 problem(s) in 1 level(s), 9 tiles" in out and not err


def test_a_clean_fractal_store_verifies(tmp_path, capsys):
    """A fractal store has no inputs: verify found four missing ones."""
    path = tmp_path / "m.zarr"
    fs.run(resolve({"system": {"kind": "mandelbrot"}, "grid": {"resolution": 8}}), str(path),
           execution=SYNC, progress=False)
    status, out, err = _main(capsys, "verify", path)
    assert status == 0 and "0 problem(s) in 1 level(s), 4 tiles" in out and not err, out + err


def test_overwritten_bytes_are_found_named_and_recomputed(damaged, clean, capsys):
    _overwrite_middle(damaged / "levels/0/score/c/1/1")
    status, out, _ = _main(capsys, "verify", damaged)
    assert status == 1
    assert "level 0 tile (1, 1): score chunk unreadable" in out
    for command in (["render", damaged, "--out", damaged.parent / "x.png"], ["dimension", damaged],
                    ["zoom", damaged, "--auto", "--scheduler", "sync", "--quiet"],
                    ["ladder", damaged, "--scheduler", "sync", "--quiet"],
                    ["audit", damaged, "--sample", "4", "--scheduler", "sync", "--quiet"]):
        status, _, err = _main(capsys, *command)
        assert status == 2 and err.count("\n") == 1
        assert "damaged tile(s) (1, 1)" in err and "verify" in err and "--repair" in err
    assert not (damaged.parent / "x.png").exists()
    info = fs.open(str(damaged)).info()
    assert info["levels"][0]["damaged"] == [[1, 1]]
    with pytest.raises(StoreError, match=r"damaged tile\(s\) \(1, 1\)"):
        fs.open(str(damaged)).animate(damaged.parent / "z.gif")
    out = _repair_and_resume(damaged, capsys, clean)
    assert "1 tile computed, 8 already done" in out


def test_a_chunk_deleted_under_its_marker_is_no_longer_a_silent_hole(damaged, clean, capsys):
    (damaged / "levels/0/score/c/2/2").unlink()  # the corner tile, cut by both borders
    (damaged / "levels/0/reused/c/0/0").unlink()
    status, out, _ = _main(capsys, "verify", damaged)
    assert status == 1
    assert "level 0 tile (2, 2): score chunk missing" in out
    assert "level 0 tile (0, 0): reused chunk missing" in out
    status, out, _ = _main(capsys, "info", damaged)
    assert status == 0 and "damaged   level 0: tile(s) (0, 0), (2, 2)" in out
    _repair_and_resume(damaged, capsys, clean)


def test_not_computed_values_in_a_finished_tile_are_damage_in_older_levels_too(damaged, clean,
                                                                              capsys):
    """A NaN score or a first_nonfinite of -2 written (checksummed) under a marker, in a
    level of before integrity 1, whose missing chunks prove nothing."""
    level = zarr.open_group(str(damaged), mode="r+")["levels/0"]
    level.attrs["integrity"] = 0
    level["score"][5, 1] = np.nan  # tile (1, 0): tiles are named (row, column)
    level["first_nonfinite"][0, 9] = -2  # tile (0, 2)
    status, out, _ = _main(capsys, "verify", damaged)
    assert status == 1
    assert "level 0 tile (1, 0): score has pixels not computed" in out
    assert "level 0 tile (0, 2): first_nonfinite has pixels not computed" in out
    _repair_and_resume(damaged, capsys, clean)


def test_a_chunk_of_another_array_deleted_is_found_by_its_readers_and_info(damaged, capsys):
    """Not only the score's: a missing final_loss chunk read as a blank quarter, silently."""
    (damaged / "levels/0/final_loss/c/1/1").unlink()
    status, out, _ = _main(capsys, "info", damaged)
    assert status == 0 and "damaged   level 0: tile(s) (1, 1)" in out
    status, _, err = _main(capsys, "render", damaged, "--array", "final_loss", "--out",
                           damaged.parent / "loss.png")
    assert status == 2 and "damaged tile(s) (1, 1)" in err and err.count("\n") == 1
    with pytest.raises(StoreError, match=r"damaged tile\(s\) \(1, 1\)"):
        fs.open(str(damaged)).level(0)["final_loss"]
    assert not (damaged.parent / "loss.png").exists()


def test_markers_provenance_and_coordinates(damaged, clean, capsys):
    (damaged / "levels/0/tiles/c/0/1").write_bytes(b"\x01")
    (damaged / "levels/0/provenance/c/2/0").unlink()
    _overwrite_middle(damaged / "levels/0/x/c/1", 4)
    status, out, _ = _main(capsys, "verify", damaged)
    assert status == 1
    assert "level 0 tile (0, 1): marker unreadable" in out
    assert "level 0 tile (2, 0): provenance missing" in out
    assert "level 0: x coordinates unreadable" in out
    status, out, _ = _main(capsys, "verify", damaged, "--repair")
    assert "coordinates rewritten from the window" in out
    assert "2 tile(s) unmarked for recomputation: (0, 1), (2, 0)" in out
    assert f"recompute the unmarked tiles with: fractalsweep resume {damaged}" in out
    _main(capsys, "resume", damaged, "--scheduler", "sync", "--quiet")
    assert _bits(damaged) == _bits(clean)


def test_damaged_inputs_are_redrawn_bit_identically(damaged, clean, capsys):
    inputs = damaged / "inputs/w0/c/0/0"
    _overwrite_middle(inputs)
    status, out, _ = _main(capsys, "verify", damaged)
    assert status == 1 and "store: input w0: 1 chunk(s) unreadable" in out
    status, out, _ = _main(capsys, "verify", damaged, "--repair")
    assert status == 0 and "inputs redrawn" in out
    assert "resume" not in out  # no tile was unmarked: nothing to recompute
    stored = zarr.open_group(str(damaged), mode="r")["inputs/w0"][:]
    np.testing.assert_array_equal(stored, zarr.open_group(str(clean), mode="r")["inputs/w0"][:])


def test_a_level_creation_cut_short_is_reported_and_removed(damaged, capsys):
    zarr.open_group(str(damaged), mode="r+")["levels"].create_group("1")
    status, out, _ = _main(capsys, "verify", damaged)
    assert status == 1 and "level 1: its creation was cut short" in out
    assert _main(capsys, "verify", damaged, "--repair")[0] == 0
    assert "1" not in zarr.open_group(str(damaged), mode="r")["levels"]


def test_a_damaged_audit_map_is_named_and_removed_to_be_made_again(damaged, capsys):
    """The map is no tile's: its damage was neither read nor repaired, while render of it
    sent the user to a repair that did nothing."""
    fs.open(str(damaged)).level(0).audit(None, against="float32", execution=SYNC,
                                         progress=False)
    _overwrite_middle(damaged / "levels/0/audit/c/1/1", size=4)
    status, out, _ = _main(capsys, "verify", damaged)
    assert status == 1 and "level 0: audit map unreadable in tile(s) (1, 1)" in out
    status, out, _ = _main(capsys, "verify", damaged, "--repair")
    assert status == 0 and "audit map removed" in out
    group = zarr.open_group(str(damaged), mode="r")["levels/0"]
    assert "audit" not in group and "audit" not in group.attrs


def test_double_double_coordinates_are_checked_in_both_parts(tmp_path, capsys):
    """x holds the high parts and x_lo the rest: a clean level verifies, a changed remainder
    is named and rewritten."""
    path = tmp_path / "dd.zarr"
    fs.run(resolve({**JOB, "dtype": "double-double", "grid": {"resolution": 4},
                    "training": {"steps": 3}}), str(path), execution=SYNC, progress=False)
    assert _main(capsys, "verify", path)[0] == 0
    level = zarr.open_group(str(path), mode="r+")["levels/0"]
    clean = level["x_lo"][:]
    level["x_lo"][1:2] = clean[1:2] + 1e-20
    status, out, _ = _main(capsys, "verify", path)
    assert status == 1 and "level 0: x_lo coordinates differ from the level's window" in out
    assert _main(capsys, "verify", path, "--repair")[0] == 0
    np.testing.assert_array_equal(level["x_lo"][:], clean)


def test_a_removed_level_0_is_named_and_resumed(damaged, clean, capsys):
    """Not a store finished with nothing in it: resume makes the job's own level again."""
    shutil.rmtree(damaged / "levels" / "0")
    status, _, err = _main(capsys, "verify", damaged)
    assert status == 0 and "level 0, the job's own window, is not in the store" in err
    assert _main(capsys, "resume", damaged, "--scheduler", "sync", "--tile", TILE,
                 "--quiet")[0] == 0
    assert _bits(damaged) == _bits(clean)


@pytest.mark.parametrize("damage,words", [
    ("zarr.json", "store: root metadata unreadable"),
    ("levels/0/zarr.json", "level 0: its metadata is unreadable"),
])
def test_damaged_metadata_is_one_line_for_readers_and_named_by_verify(damaged, capsys, damage,
                                                                      words):
    (damaged / damage).write_text("garbage")
    for command in ("info", "render", "status", "resume"):
        status, _, err = _main(capsys, command, damaged)
        assert status == 2 and err.count("\n") == 1 and "unreadable" in err, err
    status, out, _ = _main(capsys, "verify", damaged)
    assert status == 1 and words in out and "not repairable in place" in out


@pytest.mark.parametrize("damage,clean_tiles", [
    (lambda level: (level / "tiles/zarr.json").write_text("garbage"), 0),  # markers lost
    (lambda level: (level / "score/zarr.json").unlink(), 0),  # its chunks go with it
    (lambda level: shutil.rmtree(level / "provenance"), 0),
    (lambda level: shutil.rmtree(level / "x"), 9),  # rewritten from the window
])
def test_a_level_s_missing_or_unreadable_array_is_made_anew(damaged, clean, capsys, damage,
                                                            clean_tiles):
    """Once refused in one line by every reader and 'not repairable in place' by verify (the
    whole store unusable): the array is made anew, then the tiles that lost data with it are
    unmarked in the same repair, and resume makes the level bit-identical to the clean one."""
    damage(damaged / "levels/0")
    for command in ("info", "render", "status", "resume"):
        status, _, err = _main(capsys, command, damaged)
        assert status == 2 and err.count("\n") == 1 and "missing or unreadable" in err, err
    status, out, _ = _main(capsys, "verify", damaged)
    assert status == 1 and "level 0: array " in out and "not repairable" not in out, out
    status, out, _ = _main(capsys, "verify", damaged, "--repair")
    assert status == 0 and "made anew, empty" in out and "0 problem(s)" in out, out
    assert ("fractalsweep resume" in out) == (clean_tiles < 9)
    assert fs.open(str(damaged)).level(0).tiles_done == clean_tiles
    status, out, _ = _main(capsys, "resume", damaged, "--scheduler", "sync", "--quiet")
    assert status == 0 and _bits(damaged) == _bits(clean)


def test_repair_waits_for_no_running_driver(damaged, capsys):
    _overwrite_middle(damaged / "levels/0/score/c/0/0")
    lock = {"host": socket.gethostname(), "pid": os.getpid(), "started": "now"}
    (damaged / store.LOCK).write_text(json.dumps(lock))
    status, _, err = _main(capsys, "verify", damaged, "--repair")
    assert status == 2 and "is being computed by another run" in err
    assert zarr.open_group(str(damaged), mode="r")["levels/0/tiles"][0, 0] == 1


def test_every_chunk_is_checksummed(clean):
    root = zarr.open_group(str(clean), mode="r")
    arrays = [root[f"inputs/{name}"] for name in root["inputs"].array_keys()]
    arrays += [root[f"levels/0/{name}"] for name in root["levels/0"].array_keys()]
    for array in arrays:
        names = [codec.to_dict()["name"] for codec in array.metadata.codecs]
        assert names[-1] == "crc32c", (array.path, names)
        assert {"name": "zstd", "configuration": {"level": 0, "checksum": True}} in [
            codec.to_dict() for codec in array.metadata.codecs]


@pytest.mark.parametrize("copy", ["levels/0/score/c/0/1", "levels/0/final_loss/c/0/1",
                                  "levels/0/provenance/c/0/0"])
def test_a_tile_s_chunk_or_record_copied_from_another_tile_is_found(damaged, clean, capsys,
                                                                    copy):
    """Valid chunks with valid checksums, in the wrong place: each tile's provenance says
    where it belongs and the digest of what it wrote (verify read them as 0 problems)."""
    source = damaged / copy
    shutil.copyfile(source, source.parent.parent / "1" / "1")
    status, out, _ = _main(capsys, "verify", damaged)
    assert status == 1 and "level 0 tile (1, 1): " in out, out
    name = copy.split("/")[2]
    assert (f"{name} is not what the tile wrote (its provenance's digest differs)"
            if name != "provenance"
            else "provenance says tile [0, 0], where this tile has [1, 1]") in out
    _repair_and_resume(damaged, capsys, clean)


def test_a_copied_score_chunk_is_found_by_an_older_record_s_score_too(damaged, clean, capsys):
    """Records before 0.7.0 hold no digests: their converged count, min and max find it."""
    records = zarr.open_group(str(damaged), mode="r+")["levels/0/provenance"]
    record = json.loads(records[1, 1].item())
    del record["digests"]
    records[1, 1] = json.dumps(record)
    shutil.copyfile(damaged / "levels/0/score/c/0/1", damaged / "levels/0/score/c/1/1")
    status, out, _ = _main(capsys, "verify", damaged)
    assert status == 1 and "level 0 tile (1, 1): score differs from its provenance" in out, out
    _repair_and_resume(damaged, capsys, clean)


def test_a_config_changed_after_its_tiles_is_named_not_repaired(damaged, capsys):
    root = zarr.open_group(str(damaged), mode="r+")
    meta = root.attrs["fractalsweep"]
    meta["config"]["training"]["steps"] = 60
    root.attrs["fractalsweep"] = meta
    status, out, _ = _main(capsys, "verify", damaged)
    assert status == 1 and ("level 0: 9 finished tile(s) were computed with steps 30, the "
                            "stored config says 60") in out and "not repairable" in out, out


@pytest.mark.parametrize("unreadable", ["levels/0/final_loss/c/1", "levels/0/score/zarr.json",
                                        "levels/0/tiles/zarr.json", "zarr.json"])
def test_what_cannot_be_read_is_the_machine_s_refusal_not_damage(damaged, capsys, unreadable):
    """zarr's listing skips a folder it cannot read, so its chunks looked missing: info and
    resume named its tiles as damaged (exit 2) and advised a repair that then failed. An
    array's metadata that could not be read was damage too, which a repair made anew,
    throwing the level's finished tiles away."""
    drop = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]
    if os.geteuid() != 0:
        drop = []
    elif shutil.which("setpriv") is None:
        pytest.skip("root reads any folder; setpriv (util-linux) drops that")
    done = fs.open(str(damaged)).level(0).tiles_done
    path = damaged / unreadable
    mode = path.stat().st_mode
    path.chmod(0)
    try:
        for command in (["info"], ["resume", "--scheduler", "sync", "--quiet"], ["verify"],
                        ["verify", "--repair"]):
            r = subprocess.run([*drop, sys.executable, "-m", "fractalsweep", command[0],
                                str(damaged), *command[1:]], capture_output=True, text=True,
                               timeout=300)
            assert r.returncode == 1 and r.stderr.count("\n") == 1, (command, r.stderr)
            assert r.stderr.startswith(f"fractalsweep: error: Permission denied ({path}"), r
    finally:
        path.chmod(mode)
    assert _main(capsys, "verify", damaged)[0] == 0  # nothing was damaged, nor "repaired"
    assert fs.open(str(damaged)).level(0).tiles_done == done


@pytest.mark.parametrize("version", [0, 2, True])
def test_another_format_is_refused_by_every_command(damaged, capsys, version):
    """verify named a root format this version does not read, while info read the store as
    its own and a zoom computed a level into it."""
    root = zarr.open_group(str(damaged), mode="r+")
    root.attrs["fractalsweep"] = {**root.attrs["fractalsweep"], "format": version}
    named = (f"root metadata format = {version}: expected type int" if version is True
             else f"root format {version}: this fractalsweep reads format 1")  # JSON true
    status, out, _ = _main(capsys, "verify", damaged)
    assert status == 1 and named in out, out
    sync = ("--scheduler", "sync", "--quiet", "--no-render")
    for args in (["info", damaged], ["zoom", damaged, "--centre", "10", "100", "--width", "0.5",
                                     *sync]):
        status, _, err = _main(capsys, *args)
        assert status == 2 and err.count("\n") == 1 and named in err, err
    assert list(zarr.open_group(str(damaged), mode="r")["levels"]) == ["0"]


def test_any_config_change_is_named_and_stops_computing(damaged, capsys):
    """A value no tile records edited in the stored config (here the name; a byte flipped in
    a number is alike): verify said the store was clean and a resume computed by the edit.
    It is damaged root metadata, refused everywhere in one line before anything is made (a
    zoom, or a process that had read the store's inputs before, made levels first)."""
    fs.open(str(damaged)).level(0).audit(1, execution=Execution(scheduler="sync"),
                                         progress=False)  # this process has read its inputs
    root = zarr.open_group(str(damaged), mode="r+")
    meta = root.attrs["fractalsweep"]
    edited = {**meta, "config": {**meta["config"], "name": "edited"}}
    root.attrs["fractalsweep"] = edited
    root["levels/0/tiles"][0, 0] = 0
    status, out, _ = _main(capsys, "verify", damaged)
    assert status == 1 and ("store: the stored config was edited or damaged after the store "
                            "was made (its digest differs)") in out
    assert "not repairable" in out, out
    w0 = root["inputs/w0"][:]  # a repair redrew the inputs for an edited width
    root.attrs["fractalsweep"] = {**edited, "config": {**edited["config"], "model": {
        **meta["config"]["model"], "width": 8}}}
    status, _, err = _main(capsys, "verify", damaged, "--repair")
    assert status == 2 and "nothing repaired: its root metadata is damaged (the stored " \
        "config was edited" in err, err
    assert np.array_equal(zarr.open_group(str(damaged), mode="r")["inputs/w0"][:], w0)
    root.attrs["fractalsweep"] = edited
    sync = ("--scheduler", "sync", "--quiet")
    for args in (["resume", damaged, *sync], ["info", damaged],
                 ["zoom", damaged, "--centre", "10", "100", "--width", "0.5", *sync]):
        status, _, err = _main(capsys, *args)
        assert status == 2 and err.count("\n") == 1 and "its digest differs" in err, err
    with pytest.raises(StoreError, match="its digest differs"):
        fs.open(str(damaged)).zoom(centre=(10, 100), width=0.5, progress=False,
                                   execution=Execution(scheduler="sync"))
    assert store.level_indices(zarr.open_group(str(damaged), mode="r")) == [0]
    root.attrs["fractalsweep"] = {k: v for k, v in edited.items() if k != "config_digest"}
    status, out, _ = _main(capsys, "verify", damaged)  # a store made before digests
    assert status == 0, out
    root.attrs["fractalsweep"] = meta
    assert _main(capsys, "resume", damaged, "--scheduler", "sync", "--quiet")[0] == 0


@pytest.mark.parametrize("damage", ["garbage", "deleted"])
def test_lost_levels_metadata_is_one_line_and_rewritten(damaged, clean, capsys, damage):
    """The group holding the levels: a traceback in verify and run before, and a deleted one
    showed a store without levels."""
    meta = damaged / "levels" / "zarr.json"
    meta.write_text("{not json") if damage == "garbage" else meta.unlink()
    for command in ("info", "render", "resume"):
        status, _, err = _main(capsys, command, damaged)
        assert status == 2 and err.count("\n") == 1 and "levels/zarr.json" in err, err
    status, out, _ = _main(capsys, "verify", damaged)
    assert status == 1 and "the levels group's metadata (levels/zarr.json) is" in out
    status, out, _ = _main(capsys, "verify", damaged, "--repair")
    assert status == 0 and "levels group's metadata rewritten" in out
    assert _main(capsys, "verify", damaged)[0] == 0 and _bits(damaged) == _bits(clean)


@pytest.mark.parametrize("node", ["inputs", "inputs/w0"])
def test_unreadable_input_metadata_is_named_and_redrawn(damaged, clean, capsys, node):
    (damaged / node / "zarr.json").write_text("{not json")
    status, out, _ = _main(capsys, "verify", damaged)
    assert status == 1 and ("metadata is unreadable" in out or "metadata unreadable" in out)
    status, out, _ = _main(capsys, "verify", damaged, "--repair")
    assert status == 0 and "inputs redrawn" in out
    assert _main(capsys, "verify", damaged)[0] == 0
    for name in ("w0", "w1", "X", "Y"):
        assert (zarr.open_group(str(damaged), mode="r")[f"inputs/{name}"][:].tobytes()
                == zarr.open_group(str(clean), mode="r")[f"inputs/{name}"][:].tobytes())


def test_damaged_inputs_stop_a_resume_before_any_tile(damaged, capsys):
    """One line from the driver, not every tile failing its three attempts on the workers."""
    _overwrite_middle(damaged / "inputs/X/c/0/0")
    zarr.open_group(str(damaged), mode="r+")["levels/0/tiles"][0, 0] = 0
    status, _, err = _main(capsys, "resume", damaged, "--scheduler", "sync", "--quiet")
    assert status == 2 and err.count("\n") == 1 and "its inputs are unreadable" in err, err
    assert "--repair' redraws them" in err


def test_a_level_whose_metadata_is_lost_is_kept_not_computed_over(damaged, capsys):
    """Its finished tiles cannot be read without the metadata, but they are not deleted: the
    next run deleted the folder as a creation cut short, and computed the level again; a
    zoom to another index computed its window again unseen."""
    fs.open(str(damaged)).zoom(centre=(30, 300), width=1, log10=True, execution=SYNC,
                               progress=False)
    for lost, words in ((1, "level 1 (9 finished tile(s))"),
                        (0, "level 0 (9 finished tile(s)), level 1 (9 finished tile(s))")):
        (damaged / f"levels/{lost}/zarr.json").unlink()
        for command in (["resume", damaged], ["zoom", damaged, "--centre", "1", "1", "--width",
                                              "1", "--log10"]):
            status, _, err = _main(capsys, *command, "--scheduler", "sync", "--quiet")
            assert status == 2 and err.count("\n") == 1, err
            assert f"a folder without level metadata holds {words}" in err, err
        assert len(list((damaged / f"levels/{lost}/score/c").rglob("*"))) > 9  # still there
    status, out, _ = _main(capsys, "info", damaged)
    assert status == 0 and "level 0: its metadata is lost, 9 finished tile(s)" in out
    assert "level 1: its metadata is lost, 9 finished tile(s)" in out


def test_inputs_rewritten_with_valid_checksums_are_noted(damaged, capsys):
    """Not a problem, since another JAX may draw other bits, but said (verify was silent)."""
    inputs = zarr.open_group(str(damaged), mode="r+")["inputs"]
    inputs["w0"][...] = inputs["w0"][...] * (1 + 1e-7)
    status, _, err = _main(capsys, "verify", damaged)
    assert status == 0 and "note: input(s) w0 differ from a redraw from the stored config" in err


def _edit_attributes(meta, edit):
    doc = json.loads(meta.read_text())
    edit(doc["attributes"])
    meta.write_text(json.dumps(doc))


@pytest.mark.parametrize("garble", [{"lo": "abc"}, {"scale": "spiral"}])
def test_a_level_s_garbled_window_is_one_line_everywhere(damaged, capsys, garble):
    """A level's window is what every picture, zoom and ladder computes with: garbled, it was
    a decimal traceback in info, verify, zoom, dimension and animate."""
    _edit_attributes(damaged / "levels/0/zarr.json", lambda a: a["view"]["x"].update(garble))
    for command, *options in (["info"], ["status"], ["render"], ["dimension"],
                              ["animate", "--out", damaged.parent / "a.gif"],
                              ["resume", "--scheduler", "sync"],
                              ["zoom", "--centre", "30", "300", "--width", "1", "--scheduler",
                               "sync"]):
        status, _, err = _main(capsys, command, damaged, *options)
        assert status == 2 and err.count("\n") == 1, (command, err)
        assert "level 0: its window is missing or unreadable" in err, (command, err)
    status, out, _ = _main(capsys, "verify", damaged)
    assert status == 1 and f"view.x.{next(iter(garble))}" in out and "not repairable" in out


def test_garbled_root_metadata_is_one_line_everywhere(damaged, capsys):
    """The root's 'fractalsweep' attribute not a table: a TypeError in every command, and
    verify called it a creation cut short."""
    _edit_attributes(damaged / "zarr.json", lambda a: a.update(fractalsweep=[1]))
    for command, *options in (["info"], ["status"], ["render"], ["resume"],
                              ["run", "--store", damaged, "--scheduler", "sync"],
                              ["run", "--store", damaged, "--dry-run"]):
        args = (damaged, *options) if command != "run" else (_job_file(damaged.parent),
                                                             *options)
        status, _, err = _main(capsys, command, *args)
        assert status == 2 and err.count("\n") == 1, (command, err)
        assert "its root metadata (the 'fractalsweep' attribute) is damaged" in err, err
    status, out, _ = _main(capsys, "verify", damaged)
    assert status == 1 and "the root's fractalsweep metadata is not a table ([1])" in out


def _job_file(folder):
    path = folder / "job.toml"
    path.write_text('[training]\nsteps = 30\n[x]\nlog10 = [-1, 4]\n[y]\nlog10 = [-1, 4]\n'
                    '[grid]\nresolution = [10, 9]\n')
    return path


@pytest.mark.parametrize("where", ["plain", "levels"])
def test_verify_of_a_group_that_is_no_store_is_one_line(damaged, tmp_path, capsys, where):
    """A zarr group without a store's metadata, inputs or levels (a store's own subgroup
    too) is not a store: verify gave a damage report of it, exit 1."""
    path = damaged / "levels" if where == "levels" else tmp_path / "group.zarr"
    zarr.open_group(str(path), mode="a")
    status, _, err = _main(capsys, "verify", path)
    assert status == 2 and err.strip().endswith("a zarr group, but not a fractalsweep store")


def test_a_store_whose_root_metadata_is_lost_is_not_made_again_over_its_tiles(damaged, capsys):
    """Without its 'fractalsweep' attribute, a store (which keeps the mark of its creation)
    read as a creation cut short: the next run deleted it, finished tiles and all."""
    _edit_attributes(damaged / "zarr.json", lambda a: a.pop("fractalsweep"))
    lost = "its root metadata (the 'fractalsweep' attribute) is lost, while its levels hold 9"
    status, out, _ = _main(capsys, "verify", damaged)
    assert status == 1 and lost in out
    for command, *args in (["info", damaged], ["run", _job_file(damaged.parent), "--store",
                                               damaged, "--scheduler", "sync"]):
        status, _, err = _main(capsys, command, *args)
        assert status == 2 and err.count("\n") == 1 and lost in err, (command, err)
    assert zarr.open_group(str(damaged / "levels/0"), mode="r")["tiles"][:].all()


@pytest.mark.parametrize("edit", [{"versions": None}, {"versions": 5}, {"created": None},
                                  {"id": 7}])
def test_root_metadata_with_a_key_lost_or_of_another_type_is_one_line(damaged, capsys, edit):
    """info raised a KeyError or a TypeError (18 lines); verify passed versions = 5."""
    def damage(attributes):
        meta = attributes["fractalsweep"]
        for key, value in edit.items():
            if value is None:
                del meta[key]
            else:
                meta[key] = value

    _edit_attributes(damaged / "zarr.json", damage)
    for command in ("info", "status", "render"):
        status, _, err = _main(capsys, command, damaged)
        assert status == 2 and err.count("\n") == 1 and "root metadata" in err, (command, err)
    status, out, _ = _main(capsys, "verify", damaged)
    key = next(iter(edit))
    assert status == 1 and f"root metadata {'lacks' if edit[key] is None else key}" in out, out


def test_a_dry_run_refuses_what_a_run_refuses(damaged, capsys):
    """It priced a store of another configuration as "0 missing" tiles, and a damaged or
    foreign one as new, exit 0, where the run itself refuses them."""
    job = _job_file(damaged.parent)
    status, _, err = _main(capsys, "run", job, "--store", damaged, "--dry-run", "--set",
                           "training.steps=31")
    assert status == 2 and "holds another configuration (training.steps is 30" in err, err
    assert _main(capsys, "run", job, "--store", damaged, "--dry-run")[0] == 0
    zarr.open_group(str(damaged.parent / "group.zarr"), mode="a")
    status, _, err = _main(capsys, "run", job, "--store", damaged.parent / "group.zarr",
                           "--dry-run")
    assert status == 2 and "a zarr group, but not a fractalsweep store" in err, err


def test_a_resume_over_damage_in_any_array_of_the_level_names_it(damaged, capsys):
    """Of the arrays besides the score only missing chunks were looked for: a resume with a
    tile to compute went over a final_loss chunk whose bytes were overwritten, exit 0."""
    _overwrite_middle(damaged / "levels/0/final_loss/c/1/1")
    zarr.open_group(str(damaged), mode="r+")["levels/0/tiles"][0, 0] = 0
    for command in (["resume", damaged], ["run", _job_file(damaged.parent), "--store", damaged]):
        status, out, err = _main(capsys, *command, "--scheduler", "sync", "--quiet")
        assert status == 2 and "level 0: damaged tile(s) (1, 1)" in err and not out, err
    assert zarr.open_group(str(damaged), mode="r")["levels/0/tiles"][0, 0] == 0


def test_a_resume_or_run_over_damaged_tiles_names_them(damaged, clean, capsys):
    """resume said "every level is complete; nothing to compute" and a second run skipped
    every tile, over a damaged one; with a tile left to compute as well, resume computed it
    and left the damage behind, unnamed."""
    _overwrite_middle(damaged / "levels/0/score/c/1/1")
    for command in (["resume", damaged], ["run", _job_file(damaged.parent), "--store", damaged]):
        status, out, err = _main(capsys, *command, "--scheduler", "sync", "--quiet")
        assert status == 2 and err.count("\n") == 1 and not out, (command, out, err)
        assert "level 0: damaged tile(s) (1, 1)" in err and "--repair" in err, err
    zarr.open_group(str(damaged), mode="r+")["levels/0/tiles"][0, 0] = 0
    status, _, err = _main(capsys, "resume", damaged, "--scheduler", "sync", "--quiet")
    assert status == 2 and "damaged tile(s) (1, 1)" in err, err
    with pytest.raises(StoreError, match=r"damaged tile\(s\) \(1, 1\)"):
        fs.open(str(damaged)).resume(execution=SYNC, progress=False)
    assert "2 tiles computed, 7 already done" in _repair_and_resume(damaged, capsys, clean)


def test_a_store_whose_root_zarr_json_is_lost_is_named_not_called_no_store(damaged, capsys):
    """Every command said "no fractalsweep store there" of a folder whose levels hold nine
    finished tiles."""
    (damaged / "zarr.json").unlink()
    lost = "its root metadata (zarr.json) is lost, while its levels hold 9 finished tile(s)"
    for command, *args in (["info", damaged], ["resume", damaged],
                           ["run", _job_file(damaged.parent), "--store", damaged,
                            "--scheduler", "sync"]):
        status, _, err = _main(capsys, command, *args)
        assert status == 2 and err.count("\n") == 1 and lost in err, (command, err)
    status, out, _ = _main(capsys, "verify", damaged)
    assert status == 1 and lost in out and "1 problem(s)" in out, out
    assert zarr.open_group(str(damaged / "levels/0"), mode="r")["tiles"][:].all()
