"""The compiled water-filling is the numpy one, bit for bit: switching kernels changes no result."""

import json

import numpy as np
import pytest

from netsim.network import fluid, maxmin

kernel = pytest.importorskip("netsim.network.maxmin_kernel", exc_type=ImportError)


def _problem(rng: np.random.Generator):
    L, F, H = int(rng.integers(4, 60)), int(rng.integers(1, 300)), int(rng.integers(1, 7))
    cap = np.append(rng.choice([1e9, 2e9, 5e9, 12.5e9, 50e9], L) * rng.choice([1, 1, 1, 0.3], L), np.inf)
    paths = np.full((F, H), L, dtype=np.int64)
    for f in range(F):
        k = int(rng.integers(1, min(H, L) + 1))
        paths[f, :k] = rng.choice(L, k, replace=False)
    caps = np.where(rng.random(F) < 0.2, rng.random(F) * 5e9, np.inf)
    w = np.where(rng.random(F) < 0.3, rng.random(F), 1.0)
    return paths, cap, caps, w


def test_compiled_rates_equal_numpy_bit_for_bit(monkeypatch):
    monkeypatch.setenv(maxmin.SOLVER_ENV, "numpy")
    rng = np.random.default_rng(7)
    for _ in range(400):
        paths, cap, caps, w = _problem(rng)
        assert np.array_equal(maxmin.max_min_rates(paths, cap, caps, w), kernel.max_min_rates(paths, cap, caps, w))


def test_compiled_kernel_keeps_max_min_properties():
    # Two flows share a 10 GB/s link; one also crosses a 3 GB/s link: 3 and 7 (hand calculation).
    paths = np.array([[0, 1], [0, 2]])
    rates = kernel.max_min_rates(paths, np.array([10e9, 3e9, np.inf]), np.full(2, np.inf), np.ones(2))
    assert rates.tolist() == [3e9, 7e9]
    with pytest.raises(ValueError, match="no finite link"):
        kernel.max_min_rates(np.array([[1]]), np.array([5.0, np.inf]), np.full(1, np.inf), np.ones(1))


def test_flow_ids_equal_in_both_kernels(monkeypatch):
    rng = np.random.default_rng(3)
    paths = rng.integers(0, 3000, (500, 8)).astype(np.int64)
    caps = np.where(rng.random(500) < 0.3, rng.random(500), np.inf)
    w = rng.random(500)
    idx = np.sort(rng.choice(500, 200, replace=False))
    monkeypatch.setattr(maxmin.KERNEL, "compiled", None)
    plain = fluid._flow_ids(paths, caps, w, idx)
    monkeypatch.setattr(maxmin.KERNEL, "compiled", kernel)
    compiled = fluid._flow_ids(paths, caps, w, idx)
    assert all(np.array_equal(a, b) for a, b in zip(plain, compiled))


def test_a_run_is_identical_on_either_kernel(monkeypatch):
    from pathlib import Path

    from click.testing import CliRunner

    from netsim.cli import main

    topo = str(Path(__file__).resolve().parents[2] / "topologies/dcn_512.yaml")
    out = {}
    for mode in ("numpy", "compiled"):
        monkeypatch.setenv(maxmin.SOLVER_ENV, mode)
        monkeypatch.setattr(maxmin, "KERNEL", maxmin._Kernel())
        r = CliRunner().invoke(main, ["run", topo, "--model", "7B", "--json"])
        assert r.exit_code == 0, r.output
        out[mode] = json.loads(r.output)
    times = [{k: v for k, v in o.items() if k.endswith("_us")} for o in (out["numpy"], out["compiled"])]
    assert times[0] == times[1] and out["numpy"]["solves"] > 100


def test_a_bad_solver_setting_is_an_input_error(monkeypatch):
    from netsim.errors import InputError

    monkeypatch.setenv(maxmin.SOLVER_ENV, "fast")
    with pytest.raises(InputError, match="NETSIM_SOLVER"):
        maxmin._Kernel().choose()
