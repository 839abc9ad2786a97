"""DCQCN's fluid model: how the reaction points of N flows sharing a marking port set their rates.

The model of Zhu et al., "Congestion Control for Large-Scale RDMA Deployments" (SIGCOMM'15,
section 5), with the fast-recovery stages of its analysis in Zhu et al., "ECN or Delay" (CoNEXT'16),
as the authors' own fluid code (github.com/jitupadhye-zz/rdma, fluidmodel/dcqcn) writes it. Units are
packets: rates in packets/s, the queue in packets, p the marking probability of one packet. With
R the current rate, T the target rate, alpha the congestion estimate, q the port's queue and ' a
value one feedback delay ago:

    p     = 0 below KMIN, PMAX (q - KMIN) / (KMAX - KMIN) up to KMAX, 1 above
    a     = 1 - (1 - p')^(tau R')               P(a CNP, so one rate cut, in a decrease interval)
    d     = p' / ((1 - p')^(-timer R') - 1)     rate-increase timer expiries per packet
    dR/dt = -R alpha a / (2 tau) + (T - R) R' (b + d) / 2
    dT/dt = -(T - R) a c / tau + R' (increase per timer stage beyond fast recovery)
    dalpha/dt = g / tau_alpha ((1 - (1 - p')^(tau_alpha R')) - alpha)
    dq/dt = sum of R - C   (never below an empty queue)

c is the share of cuts that also lower the target (1 in the papers; see `clamping`).
b (byte-counter events per packet) is 0: SimAI's Mellanox variant (CC_MODE 1) has no byte counter
(reference/simai_ns3_semantics.md section 4, "DCQCN"). Its timer stages after FAST_RECOVERY_TIMES
fast-recovery stages add RATE_AI once, then RATE_HAI (hyper increase) at every further stage: a
stage k is reached with no mark in between with probability (1 - p)^(k timer R), so the additive
term splits into RATE_AI for stage F + 1 and RATE_HAI beyond (with RATE_HAI = RATE_AI it is the
papers' single term d (1 - p)^(F timer R) RATE_AI).

At the fixed point every flow runs at C / N, alpha settles, T - R is constant, and the queue sits
where p makes cuts and increases balance (`steady_marking`). Window-limited flows under SimAI's
settings (CLAMP_TARGET_RATE 0, RP_TIMER 900 us) do not settle there: the port cycles between KMIN
and the windows' queue, fully used; `mean_queues` integrates that and `network/transport.py`
holds a marking port's queue at its mean. Knows nothing about collectives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Marking:
    """A port's ECN ramp: KMIN and KMAX (bytes queued at the egress port) and PMAX."""

    kmin: float
    kmax: float
    pmax: float

    def p(self, q: float) -> float:
        if q <= self.kmin:
            return 0.0
        if q <= self.kmax:
            return (q - self.kmin) / (self.kmax - self.kmin) * self.pmax
        return 1.0

    def p_of(self, q: np.ndarray) -> np.ndarray:
        """p for an array of queues (bytes)."""
        ramp = (q - self.kmin) / (self.kmax - self.kmin) * self.pmax
        return np.where(q <= self.kmin, 0.0, np.where(q <= self.kmax, ramp, 1.0))

    def queue(self, p: float) -> float:
        """The queue (bytes) at which the ramp marks with probability p (p <= PMAX)."""
        return self.kmin + p / self.pmax * (self.kmax - self.kmin)


@dataclass(frozen=True)
class Dcqcn:
    """DCQCN's reaction-point parameters: intervals in seconds, rates in packets/s of `packet`
    bytes (the wire size of a data packet). Public methods take bytes and bytes/s."""

    tau: float  # RATE_DECREASE_INTERVAL: at most one rate cut per interval
    tau_alpha: float  # ALPHA_RESUME_INTERVAL: alpha's update period
    timer: float  # RP_TIMER: the rate-increase timer
    g: float  # EWMA_GAIN
    fast: int  # FAST_RECOVERY_TIMES
    r_ai: float  # RATE_AI
    r_hai: float  # RATE_HAI
    min_rate: float  # MIN_RATE
    packet: float  # bytes of a data packet on the wire (payload + headers)
    clamp: bool = False  # CLAMP_TARGET_RATE: every cut sets the target to the current rate
    ramps: tuple[tuple[float, Marking], ...] = ()  # (link rate in bits/s, its ports' ramp)

    @classmethod
    def from_values(
        cls,
        values: dict[str, float],
        rates: dict[str, float],
        packet_bytes: float,
        ramps: dict[float, Marking] | None = None,
    ) -> Dcqcn:
        """From SimAI.conf's numbers (intervals in us), rates (bytes/s) and ECN ramps per link rate
        (bits/s), for packets of `packet_bytes`. A missing key takes SimAI's shipped value
        (reference/simai.md section 5.3)."""
        pkts = 1.0 / packet_bytes
        return cls(
            tau=values.get("RATE_DECREASE_INTERVAL", 4) * 1e-6,
            tau_alpha=values.get("ALPHA_RESUME_INTERVAL", 1) * 1e-6,
            timer=values.get("RP_TIMER", 900) * 1e-6,
            g=values.get("EWMA_GAIN", 1 / 256),
            fast=int(values.get("FAST_RECOVERY_TIMES", 1)),
            r_ai=rates.get("RATE_AI", 50e6 / 8) * pkts,
            r_hai=rates.get("RATE_HAI", 100e6 / 8) * pkts,
            min_rate=rates.get("MIN_RATE", 100e6 / 8) * pkts,
            packet=packet_bytes,
            clamp=bool(values.get("CLAMP_TARGET_RATE", 0)),
            ramps=tuple(sorted((ramps or {}).items())),
        )

    def ramp(self, link_bps: float) -> Marking | None:
        """The ECN ramp of a port at `link_bps`, or None (SimAI's maps name every switch-port rate)."""
        return next((m for bps, m in self.ramps if bps == link_bps), None)

    # Every term takes p and r as arrays (or scalars) that broadcast: one port's flows share p,
    # many ports' representative flows (mean_queues) each have their own.
    def cut(self, p, r, interval: float | None = None) -> np.ndarray:
        """1 - (1 - p)^(interval r): P(a marked packet in `interval` (tau unless given)) at rates r."""
        p, r = np.asarray(p, dtype=float), np.asarray(r, dtype=float)
        log_keep = np.log1p(-np.minimum(p, 1.0 - 1e-16))
        return np.where(p >= 1.0, 1.0, -np.expm1((self.tau if interval is None else interval) * r * log_keep))

    def timer_events(self, p, r) -> np.ndarray:
        """Rate-increase timer expiries per packet at rates r: 1 / (timer r) without marks, 0 when
        every packet is marked (a mark resets the timer)."""
        p, r = np.asarray(p, dtype=float), np.asarray(r, dtype=float)
        safe = np.where(r > 0, r, np.inf)
        x = -self.timer * safe * np.log1p(-np.clip(p, 1e-300, 1.0 - 1e-16))  # > 0
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            marked = np.where(x > 700, p * np.exp(-np.minimum(x, 745)), p / np.expm1(np.minimum(x, 700)))
        return np.where(p <= 0.0, 1.0 / (self.timer * safe), np.where(p >= 1.0, 0.0, marked))

    def increase(self, p, r) -> np.ndarray:
        """Target-rate increase per packet at rates r: RATE_AI at stage F + 1, RATE_HAI beyond."""
        p, r = np.asarray(p, dtype=float), np.asarray(r, dtype=float)
        stay = np.where(p < 1.0, np.exp(self.timer * r * np.log1p(-np.minimum(p, 1.0 - 1e-16))), 0.0)
        return self.timer_events(p, r) * stay**self.fast * (self.r_ai * (1.0 - stay) + self.r_hai * stay)

    def clamping(self, a) -> np.ndarray:
        """The share of rate cuts that set the target to the current rate. With CLAMP_TARGET_RATE
        every cut does (the papers' model); without it only a cut after a timer stage does
        (ns-3's CheckRateDecreaseMlx: stage 0 keeps the target), i.e. after no cut for one timer
        period: (1 - a)^(timer / tau) with a cut in each decrease interval with probability a."""
        a = np.asarray(a, dtype=float)
        return np.ones_like(a) if self.clamp else (1.0 - a) ** (self.timer / self.tau)

    def derivatives(self, rc: np.ndarray, rt: np.ndarray, alpha: np.ndarray, rc_then: np.ndarray, p):
        """d(rc, rt, alpha)/dt of each flow given its rate one feedback delay ago and the delayed p
        (packets/s, per second)."""
        a = self.cut(p, rc_then)
        d_rc = -rc * alpha * a / (2 * self.tau) + (rt - rc) * rc_then * self.timer_events(p, rc_then) / 2
        d_rt = -(rt - rc) * a * self.clamping(a) / self.tau + rc_then * self.increase(p, rc_then)
        d_alpha = self.g / self.tau_alpha * (self.cut(p, rc_then, self.tau_alpha) - alpha)
        return d_rc, d_rt, d_alpha

    def steady_marking(self, rate: float, line: float) -> float:
        """The marking probability at which a flow at `rate` (packets/s, on a NIC of `line`)
        neither gains nor loses: its cuts R alpha a / (2 tau) match its increases (T - R) R d / 2,
        with alpha at its fixed point and T - R where dT/dt = 0 puts it (at most line - R)."""
        from scipy.optimize import brentq  # here: a plain `run` must not import scipy

        r = np.array([rate])

        def balance(p: float) -> float:
            a = float(self.cut(p, r)[0])
            alpha = float(self.cut(p, r, self.tau_alpha)[0])
            held = a * float(self.clamping(a))
            inc = rate * float(self.increase(p, r)[0])
            gap = line - rate if held <= 0 or inc * self.tau >= held * (line - rate) else inc * self.tau / held
            return rate * alpha * a / (2 * self.tau) - gap * rate * float(self.timer_events(p, r)[0]) / 2

        hi = 1.0 - 1e-12
        if balance(hi) <= 0.0:
            return 1.0
        return brentq(balance, 1e-15, hi, xtol=1e-15, rtol=1e-12)


def simulate(
    cc: Dcqcn, marking: Marking, capacity: float, rates: list[float], duration: float, delay: float, step: float = 1e-7
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integrate the fluid model (explicit Euler, delayed terms from a history buffer) for flows
    starting at `rates` (bytes/s) with target = rate and alpha = 1 (updated from the first mark on,
    as ns-3 starts alpha's timer at the first CNP) into one port of `capacity`
    bytes/s, with feedback `delay` seconds. Returns the times, each flow's rate over time
    [t, flow] (bytes/s) and the queue (bytes)."""
    pk = cc.packet
    n, steps, lag = len(rates), int(round(duration / step)), max(1, int(round(delay / step)))
    c = capacity / pk
    rc = np.array(rates, dtype=float) / pk
    rt, alpha, q = rc.copy(), np.ones(n), 0.0
    hist_rc, hist_q = np.tile(rc, (lag, 1)), np.zeros(lag)
    out_rc, out_q = np.empty((steps + 1, n)), np.empty(steps + 1)
    out_rc[0], out_q[0] = rc, q
    seen = False  # alpha starts updating at the first CNP (ns-3's cnp_received_mlx)
    for k in range(steps):
        rc_then, q_then = hist_rc[k % lag], hist_q[k % lag]
        hist_rc[k % lag], hist_q[k % lag] = rc, q
        p = marking.p(q_then * pk)
        seen = seen or p > 0
        d_rc, d_rt, d_alpha = cc.derivatives(rc, rt, alpha, rc_then, p)
        rc = np.clip(rc + step * d_rc, cc.min_rate, c)
        rt = np.clip(rt + step * d_rt, cc.min_rate, c)
        alpha = np.clip(alpha + step * d_alpha * seen, 0.0, 1.0)
        q = max(0.0, q + step * (rc.sum() - c))
        out_rc[k + 1], out_q[k + 1] = rc, q
    return np.arange(steps + 1) * step, out_rc * pk, out_q * pk


def mean_queues(
    cc: Dcqcn, marking: Marking, capacity: float, flows: np.ndarray, window: float, rtt: float,
    horizon: float = 10e-3, step: float = 1e-6,
) -> np.ndarray:  # fmt: skip
    """The long-run mean queue (bytes) that n window-limited DCQCN flows hold at a port of
    `capacity` bytes/s, for each n in `flows`: a flow sends at min(its DCQCN rate, window / (rtt +
    the port's queueing)), starting at line rate (no slow start), and the feedback comes one
    `rtt` later. With SimAI's settings the port does not settle at the fluid fixed point but
    cycles between KMIN and the windows' queue (periods of milliseconds); the mean is taken over
    the second half of `horizon`, past the start. Symmetric flows are one representative flow per n.
    A 1 us step is within 1 % of a 0.25 us one for n <= 8 and 5 % up to 64 (horizon 20 ms: 8 %)."""
    pk = cc.packet
    c, w = capacity / pk, window / pk
    n = np.asarray(flows, dtype=float)
    steps, lag = int(round(horizon / step)), max(1, int(round(rtt / step)))
    rc, rt, alpha, q = np.full(n.shape, c), np.full(n.shape, c), np.ones(n.shape), np.zeros(n.shape)
    hist_rc, hist_q = np.tile(rc, (lag, 1)), np.zeros((lag, n.size))
    total, counted = np.zeros(n.shape), 0
    seen = np.zeros(n.shape, dtype=bool)  # alpha starts updating at the first CNP
    for k in range(steps):
        slot = k % lag
        rc_then, q_then = hist_rc[slot].copy(), hist_q[slot].copy()
        eff = np.minimum(rc, w / (rtt + q / c))
        hist_rc[slot], hist_q[slot] = eff, q
        p = marking.p_of(q_then * pk)
        seen |= p > 0
        d_rc, d_rt, d_alpha = cc.derivatives(rc, rt, alpha, rc_then, p)
        rc = np.clip(rc + step * d_rc, cc.min_rate, c)
        rt = np.clip(rt + step * d_rt, cc.min_rate, c)
        alpha = np.clip(alpha + step * d_alpha * seen, 0.0, 1.0)
        q = np.maximum(0.0, q + step * (n * eff - c))
        if k >= steps // 2:
            total += q
            counted += 1
    return total / max(counted, 1) * pk
