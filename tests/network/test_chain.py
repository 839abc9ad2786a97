"""A chain of batches (network/chain.py) runs ahead on idle links and gives way when touched:
its times are the per-event run's, worked out by hand here."""

import numpy as np
import pytest
import simpy

from netsim.network.fluid import FluidNetwork

# One link at 100 B/s; each batch is one flow of 200 B (2 s alone) reported 0.5 s after it drains,
# and the next starts 1 s after that report. The batch runs once alone first (0-2 s, so the
# network knows how it drains); the chain begins at 3 s: alone, starts 4, 7.5, 11 and reports
# 6.5, 10, 13.5.
GAP, DELAY, SIZE, BEGIN = 1.0, 0.5, 200.0, 3.0


def _run(ahead: bool, other_at: float | None = None) -> tuple[list, list, float | None, FluidNetwork]:
    env = simpy.Environment()
    fluid = FluidNetwork(env, np.array([100.0, np.inf]), np.array([0.0, 0.0]))
    fluid.run_ahead = ahead
    paths = np.full((1, fluid.H), 1)
    paths[0, 0] = 0
    sizes = np.array([SIZE])
    paths.flags.writeable = sizes.flags.writeable = False
    got, other = [], []
    fluid.start_batch(paths, sizes, lambda: None, DELAY)
    env.timeout(BEGIN).callbacks.append(
        lambda _e: fluid.start_chain(
            [GAP] * 3, [(paths, sizes, DELAY)] * 3, lambda s, r: got.append((list(s), list(r)))
        )
    )
    if other_at is not None:  # 100 B on the chain's link
        env.timeout(other_at).callbacks.append(lambda _e: fluid.start([0], 100.0, lambda: other.append(env.now)))
    env.run()
    return got[0][0], got[0][1], other[0] if other else None, fluid


def test_chain_alone_runs_ahead_with_the_clocks_times():
    starts, reports, _o, fluid = _run(True)
    assert starts == [4.0, 7.5, 11.0] and reports == [6.5, 10.0, 13.5]
    assert fluid.utilisation(13.5)[0] == pytest.approx(800.0 / 1350.0)
    assert not fluid.chains and fluid.users[0] == 0
    assert (fluid.flows_started, fluid.solves, fluid.events) == (4, 4, 4)  # as four reservations


@pytest.mark.parametrize(
    "other_at, starts, reports, other_end",
    [
        # The first batch in flight (100 B left at 5): 50 B/s each, both done at 7.
        (5.0, [4.0, 8.5, 12.0], [7.5, 11.0, 14.5], 7.0),
        # The second in flight (150 B left at 8): 50 B/s each until the other's 100 B are done at
        # 10, then its last 50 B alone: drained at 10.5, reported at 11.
        (8.0, [4.0, 7.5, 12.0], [6.5, 11.0, 14.5], 10.0),
        # In a gap: the other flow alone from 7 (50 B left at 7.5), then 50 B/s each: it ends at
        # 8.5, the batch has 150 B left then, drained at 10, reported at 10.5.
        (7.0, [4.0, 7.5, 11.5], [6.5, 10.5, 14.0], 8.5),
        # In the delay after the first drain (6 < 6.2 < 6.5): alone until 7.2, before the next start.
        (6.2, [4.0, 7.5, 11.0], [6.5, 10.0, 13.5], 7.2),
    ],
)
def test_chain_touched_gives_way_as_the_per_event_run(other_at, starts, reports, other_end):
    ahead = _run(True, other_at)
    per_event = _run(False, other_at)
    assert ahead[:3] == per_event[:3]
    assert ahead[0] == pytest.approx(starts) and ahead[1] == pytest.approx(reports)
    assert ahead[2] == pytest.approx(other_end)
    u = [r[3].utilisation(15.0)[0] for r in (ahead, per_event)]
    assert u[0] == u[1] == pytest.approx(900.0 / 1500.0)
    assert ahead[3].solves == per_event[3].solves and ahead[3].flows_started == per_event[3].flows_started
    assert not ahead[3].chains


def test_call_at_lands_on_the_time_the_clock_would_have_reached():
    # A settling chain's report was due at r + delay, as a timer set at r would give it: set
    # from a later `now` instead, it lands on the same float (t - now is exact for now >= t / 2).
    env = simpy.Environment()
    fluid = FluidNetwork(env, np.array([np.inf]), np.array([0.0]))
    r, delay, now = 1.1, 2.7e-6, 1.1 + 1.3e-6
    seen = []
    env.timeout(now).callbacks.append(lambda _e: fluid.call_at(r + delay, lambda: seen.append(env.now)))
    env.run()
    assert seen == [r + delay]
