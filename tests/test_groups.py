"""Repacking the XLA kernel's groups as their networks blow up (fractalsweep.groups): the
packing itself on hand-made states, and the real kernel trained with and without it, bit
for bit, on windows where networks blow up at many different steps."""

import jax
import numpy as np
import pytest

from fractalsweep import config, groups, kernel, streams
from fractalsweep.grid import axis_values, flat_pixels


def test_pack_pads_the_last_group_with_its_first_id():
    np.testing.assert_array_equal(groups.pack(np.array([7, 3, 9]), 2), [[7, 3], [9, 9]])
    np.testing.assert_array_equal(groups.pack(np.array([5]), 3), [[5, 5, 5]])
    np.testing.assert_array_equal(groups.pack(np.arange(4), 2), [[0, 1], [2, 3]])


def _states(members):
    """A state per group whose rows name their pixel: row value = 10 * id (+ a 2-D leaf)."""
    return [{"a": 10.0 * m, "b": np.stack([m, -m], axis=1), "none": None} for m in members]


def test_repack_moves_each_network_s_state_with_its_pixel():
    members = [np.array([0, 1, 2, 3]), np.array([4, 5, 6, 6])]  # 6 padded
    alive = np.array([1, 0, 0, 1, 0, 1, 1, 1], bool)
    kept, states, retired = groups.repack(members, _states(members), alive, 4)
    assert [m.tolist() for m in kept] == [[0, 3, 5, 6]]
    np.testing.assert_array_equal(states[0]["a"], [0, 30, 50, 60])
    np.testing.assert_array_equal(states[0]["b"], [[0, 0], [3, -3], [5, -5], [6, -6]])
    assert states[0]["none"] is None
    assert [m.tolist() for m, _ in retired] == [[1, 2, 4, 1]]
    np.testing.assert_array_equal(retired[0][1]["a"], [10, 20, 40, 10])


def test_repack_leaves_groups_alone_unless_the_live_fit_in_fewer():
    members = [np.array([0, 1, 2]), np.array([3, 4, 5])]
    states = _states(members)
    alive = np.array([1, 1, 0, 1, 0, 1], bool)  # 4 live need 2 groups of 3, as now
    kept, same, retired = groups.repack(members, states, alive, 3)
    assert kept is members and same is states and retired == []
    kept, _, retired = groups.repack(members, states, np.zeros(6, bool), 3)
    assert kept == [] and [m.tolist() for m, _ in retired] == [[0, 1, 2], [3, 4, 5]]


def _counting(kern, slots):
    """``kern`` with ``advance`` noting the network-steps each call may train."""
    def advance(state, xs, ys, data, batch_idx, t, stop):
        slots.append(xs.size * (stop - t))
        return kern.advance(state, xs, ys, data, batch_idx, t, stop)

    return kern._replace(advance=advance)


CASES = {  # each with networks that blow up at many different steps
    "tanh": {},
    "relu": {"model": {"activation": "relu"}},
    "minibatch and measures": {"training": {"batch": 16},
                               "measures": {"snapshots": [5, 60], "lyapunov": True}},
    "momentum": {"training": {"optimizer": "momentum"}},  # an optimizer state to move
}


@pytest.mark.parametrize("case", CASES)
def test_repacking_trains_less_and_changes_no_bit(case):
    """Against every group trained to its last step: the same outputs, bit for bit, and
    fewer network-steps asked of the kernel; the repacked states reuse the compiled
    functions."""
    steps, n, group = 200, 24, 16
    cfg = config.resolve({"x": {"log10": [-1, 5]}, "y": {"log10": [-1, 5]}, **CASES[case],
                          "training": {"steps": steps, **CASES[case].get("training", {})},
                          "grid": {"resolution": n}})
    xs, ys = (v.astype(cfg.dtype) for v in flat_pixels(
        axis_values(cfg.x, n, "float64"), axis_values(cfg.y, n, "float64")))
    kcfg, arrays = kernel.kernel_config(cfg), streams.draw(cfg)
    with jax.enable_x64(True):
        inputs, twin = kernel.prepare(kcfg, arrays), kernel.twin_direction(kcfg, arrays)
        compiled = kernel.compile_kernel(kcfg, True)
        slots = []
        got = groups.train(_counting(compiled, slots), xs, ys, group, *inputs, twin, steps)
        want = groups.train(kernel.compile_kernel(kcfg, False), xs, ys, group, *inputs, twin,
                            steps, repacking=False)
    assert sorted(got) == sorted(kernel.outputs(cfg))
    for name in got:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    blew_up = want["first_nonfinite"][want["first_nonfinite"] >= 0]
    assert np.ptp(blew_up) > 2 * groups.SEGMENT, "the window must blow up at many steps"
    assert sum(slots) < 0.9 * xs.size * steps
    assert [f._cache_size() for f in compiled] == [1, 1, 1]
