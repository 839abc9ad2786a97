"""Failures and recovery with in-memory checkpoints (GEMINI, reference/peers.md section 3).

Closed forms from GEMINI's artifact notebook (Fig 9, 11, 14) and a Monte Carlo check of the
recovery probability over the same placements the simulator uses (checkpoint.peer_servers).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np

from netsim.system.checkpoint import peer_servers

MINUTES_PER_DAY = 1440


def recovery_probability(n: int, m: int, k: int, placement: str = "group") -> float:
    """Probability that k simultaneous machine failures out of n leave a replica of every shard:
    1 for k < m; group: 1 - (n/m) C(n-m, k-m) / C(n, k); ring: 1 - n C(n-m, k-m) / C(n, k).

    GEMINI's formula counts each lost replica set once: exact while only one set can fail (k < 2m
    for groups), a lower bound beyond (two lost sets are subtracted twice); the Monte Carlo check
    gives the exact value there."""
    if k < m:
        return 1.0
    if k > n:
        return 0.0
    lost_sets = n / m if placement == "group" else n
    return max(0.0, 1.0 - lost_sets * comb(n - m, k - m) / comb(n, k))


def recovery_probability_mc(
    n: int, m: int, k: int, placement: str = "group", trials: int = 20000, seed: int = 0
) -> float:
    """The same by sampling k failed machines at random: a shard is lost when its machine and all
    m-1 of its peers failed."""
    rng = np.random.default_rng(seed)
    holders = [[i, *p] for i, p in enumerate(peer_servers(n, m, placement))]
    ok = 0
    for _ in range(trials):
        failed = np.zeros(n, dtype=bool)
        failed[rng.choice(n, size=k, replace=False)] = True
        ok += not any(failed[h].all() for h in holders)
    return ok / trials


def checkpoint_time_reduction(instance_gbps: float, n: int, m: int = 2, storage_gbps: float = 20.0) -> float:
    """Fig 11: checkpoint to peers at 0.85 of an instance's bandwidth vs each instance's share of
    the remote storage's aggregate bandwidth, for m-1 remote replicas: 0.85 B / (S/N) / (m-1)."""
    return 0.85 * instance_gbps / (storage_gbps / n) / (m - 1)


def wasted_time_per_failure(t_ckpt: float, checkpoint_frequency: float, t_retrieve: float) -> float:
    """GEMINI's wasted time per failure: t_ckpt + 1/(2f) + t_retrieve (f: checkpoints per unit time)."""
    return t_ckpt + 1.0 / (2.0 * checkpoint_frequency) + t_retrieve


@dataclass(frozen=True)
class RecoveryScheme:
    """A checkpointing scheme's cost: the fraction of time it leaves to training without failures,
    and the minutes lost per failure (GEMINI's Fig 14 scenarios, from its artifact notebook)."""

    name: str
    useful_fraction: float
    minutes_per_failure: float

    def effective_ratio(self, failures_per_day: float) -> float:
        return max(0.0, self.useful_fraction - self.minutes_per_failure * failures_per_day / MINUTES_PER_DAY)


SCHEMES = (
    # GEMINI: 9 minutes per failure, no checkpoint overhead.
    RecoveryScheme("GEMINI", 1.0, 9.0),
    # HighFreq: save 80 s, upload 480 s (so 480/560 of the time trains); 8 x 2.5 + 6 minutes lost.
    RecoveryScheme("HighFreq", 480.0 / (80.0 + 480.0), 8 * 2.5 + 6),
    # Strawman: 3-hourly remote checkpoints with t_ckpt = 8 min: 2 x 8 + 90 + 6 minutes lost.
    RecoveryScheme("Strawman", 1.0, 2 * 8 + 90 + 6),
)
