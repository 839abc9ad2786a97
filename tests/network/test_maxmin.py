"""Max-min solver: hand-checked cases and properties (hypothesis)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.network.maxmin import max_min_rates

INF = np.inf


def solve(paths, caps_links, **kw):
    L = len(caps_links)
    H = max(len(p) for p in paths)
    P = np.full((len(paths), H), L, dtype=np.int64)
    for i, p in enumerate(paths):
        P[i, : len(p)] = p
    return max_min_rates(P, np.array(list(caps_links) + [INF]), **kw)


def test_textbook_example():
    # Links 0 (cap 10) and 1 (cap 4); flow A on both, B on 0, C on 1.
    r = solve([[0, 1], [0], [1]], [10, 4])
    assert r == pytest.approx([2, 8, 2])


def test_rate_cap_acts_as_private_link():
    r = solve([[0], [0]], [10], caps=np.array([1.0, INF]))
    assert r == pytest.approx([1, 9])


def test_weights_count_wire_bytes():
    # A compressed flow (weight 0.5) and a plain one share 10: each gets rate 20/3.
    r = solve([[0], [0]], [10], weights=np.array([0.5, 1.0]))
    assert r == pytest.approx([20 / 3, 20 / 3])
    assert 0.5 * r[0] + r[1] == pytest.approx(10)


@st.composite
def networks(draw):
    L = draw(st.integers(1, 8))
    caps = draw(st.lists(st.floats(0.5, 100), min_size=L, max_size=L))
    F = draw(st.integers(1, 12))
    paths = [draw(st.lists(st.integers(0, L - 1), min_size=1, max_size=4, unique=True)) for _ in range(F)]
    flow_caps = draw(st.lists(st.one_of(st.just(INF), st.floats(0.1, 50)), min_size=F, max_size=F))
    return caps, paths, np.array(flow_caps)


@settings(max_examples=300, deadline=None)
@given(networks())
def test_feasible_and_every_flow_has_a_bottleneck(net):
    caps, paths, fcaps = net
    r = solve(paths, caps, caps=fcaps)
    load = np.zeros(len(caps))
    for f, p in enumerate(paths):
        for l in p:
            load[l] += r[f]
    # Never exceeds a link's capacity.
    assert (load <= np.array(caps) * (1 + 1e-7) + 1e-9).all()
    for f, p in enumerate(paths):
        assert r[f] > 0
        if r[f] >= fcaps[f] * (1 - 1e-7):
            continue  # bounded by its own cap
        # A saturated link on its path where no other flow gets more.
        ok = any(
            load[l] >= caps[l] * (1 - 1e-7) and all(r[g] <= r[f] * (1 + 1e-7) for g, q in enumerate(paths) if l in q)
            for l in p
        )
        assert ok, (f, r, load)


def test_flows_that_share_no_link_run_at_their_narrowest_link_exactly():
    # fluid.FluidNetwork._alone_rates takes this closed form for a batch on idle links whose flows
    # share no link: it must equal the water-filling bit for bit (same divisions).
    rng = np.random.default_rng(7)
    L, F, H = 400, 40, 6
    links = rng.permutation(L)[: F * 4].reshape(F, 4)
    paths = np.full((F, H), L, dtype=np.int64)
    paths[:, :4] = links
    capacity = np.append(rng.uniform(1e9, 5e10, L), np.inf)
    caps = np.where(rng.random(F) < 0.3, rng.uniform(1e9, 3e10, F), np.inf)
    w = rng.uniform(0.2, 1.0, F)
    want = np.minimum((capacity[paths] / w[:, None]).min(axis=1), caps)
    assert np.array_equal(max_min_rates(paths, capacity, caps, w), want)


def test_flow_id_multipliers_are_numpys_draws():
    # The memo's canonical order rests on these multipliers: the stored draws must be numpy's.
    from netsim.network.fluid import _row_mix

    for seed in (18, 19):
        for width in (1, 10, 18, 19, 25):
            rng = np.random.default_rng(seed).integers(1, 2**63, size=width, dtype=np.uint64)
            assert (_row_mix(width, seed) == (rng | np.uint64(1))).all(), (seed, width)
