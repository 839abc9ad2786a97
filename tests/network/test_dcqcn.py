"""DCQCN's fluid model (network/dcqcn.py) against closed forms and hand calculations."""

import dataclasses

import numpy as np
import pytest

from netsim.config.simai_conf import parse_simai_conf
from netsim.network.dcqcn import Dcqcn, Marking, mean_queues, simulate
from netsim.validation.simai import dcqcn_of

PKT = 9052.0  # a 9000-byte payload with its 52 bytes of headers
C = 50e9  # 400 Gbps in bytes/s
RAMP = Marking(800e3, 3200e3, 0.2)  # SimAI.conf's 400G entry
CC = Dcqcn.from_values({}, {}, PKT)  # SimAI's shipped settings


def test_every_packet_marked_halves_alpha_one_rates_every_two_intervals():
    # Above KMAX every packet is marked: a = 1 and no timer expires, so with alpha = 1 (and it
    # stays 1: its target is 1) dR/dt = -R / (2 tau), R(t) = R0 exp(-t / (2 tau)).
    always = Marking(-2.0, -1.0, 0.2)  # any queue is past KMAX
    t, r, _q = simulate(CC, always, 1e12, [C / 2], duration=8e-6, delay=1e-6, step=1e-9)
    want = C / 2 * np.exp(-t / (2 * CC.tau))
    assert r[:, 0] == pytest.approx(want, rel=1e-3)
    assert r[-1, 0] / (C / 2) == pytest.approx(np.exp(-1.0), rel=1e-3)  # 8 us = 2 tau


def test_two_line_rate_flows_lose_rate_once_the_queue_passes_kmin():
    # Two flows at line rate into one port: the queue grows at C (2C in, C out) and reaches KMIN
    # at 800 KB / 50 GB/s = 16 us. Marks reach the senders one feedback delay (5 us) later; until
    # then both keep line rate, afterwards both lose rate, identically.
    t, r, q = simulate(CC, RAMP, C, [C, C], duration=60e-6, delay=5e-6, step=1e-8)
    cross = 800e3 / C
    assert q[np.searchsorted(t, cross)] == pytest.approx(800e3, rel=1e-3)
    before = t < cross + 5e-6 - 1e-8
    assert (r[before] == C).all()
    assert (r[-1] < 0.9 * C).all() and r[-1, 0] == r[-1, 1]
    # The first cut after the delay is the fluid model's: R alpha a / (2 tau) with alpha = 1 and
    # a = 1 - (1 - p)^(tau R), p the ramp's value one delay earlier.
    k = np.searchsorted(t, cross + 5e-6 + 1e-6)
    p = RAMP.p(q[np.searchsorted(t, t[k] - 5e-6)])
    a = 1 - (1 - p) ** (CC.tau * C / PKT)
    slope = (r[k + 1, 0] - r[k, 0]) / (t[k + 1] - t[k])
    assert slope == pytest.approx(-r[k, 0] * a / (2 * CC.tau), rel=0.05)


def test_the_fixed_point_holds_still():
    # steady_marking solves cuts = increases for a flow at C/N (a root of one equation); started
    # there (T - R from dT/dt = 0, alpha at its target, the queue where the ramp gives p), the
    # integrated model stays: two independent routes to the same equilibrium.
    cc = dataclasses.replace(CC, clamp=True)
    n, c = 4, C / PKT
    r = c / n
    p = cc.steady_marking(r, c)
    a = float(cc.cut(p, r))
    gap = r * float(cc.increase(p, r)) * cc.tau / a
    alpha = float(cc.cut(p, r, cc.tau_alpha))
    d_rc, d_rt, d_alpha = cc.derivatives(np.full(n, r), np.full(n, r + gap), np.full(n, alpha), np.full(n, r), p)
    assert abs(d_rc[0]) * 1e-3 < r * 1e-6  # under 1 ppm of the rate per ms
    assert abs(d_rt[0]) * 1e-3 < r * 1e-6
    assert abs(d_alpha[0]) < 1e-9
    assert RAMP.kmin < RAMP.queue(p) < RAMP.kmax


def test_windows_below_kmin_keep_their_queue_and_above_it_dcqcn_holds_less():
    # n flows with 243 KB windows and a 5 us RTT at 400 Gbps: the windows queue n W - C RTT. Two
    # flows queue 236 KB (< KMIN: nothing marked, DCQCN idle); eight would queue 1.69 MB, and DCQCN
    # holds the port between KMIN and that.
    w, rtt = 243e3, 5e-6
    mq = mean_queues(CC, RAMP, C, np.array([2, 8]), w, rtt, horizon=4e-3)
    assert mq[0] == pytest.approx(2 * w - C * rtt, rel=1e-6)
    assert RAMP.kmin < mq[1] < 8 * w - C * rtt


def test_simai_conf_dcqcn_reads_its_units():
    text = """CC_MODE 1
ENABLE_QCN 1
PACKET_PAYLOAD_SIZE 9000
ALPHA_RESUME_INTERVAL 1
RATE_DECREASE_INTERVAL 4
RP_TIMER 300
EWMA_GAIN 0.0625
FAST_RECOVERY_TIMES 5
CLAMP_TARGET_RATE 1
RATE_AI 40Mb/s
RATE_HAI 200Mb/s
MIN_RATE 100Mb/s
KMAX_MAP 1 400000000000 3200
KMIN_MAP 1 400000000000 800
PMAX_MAP 1 400000000000 0.2
MYSTERY_KNOB 3
"""
    conf = parse_simai_conf(text, "x.conf")
    cc = dcqcn_of(conf)
    assert conf.unknown == ["MYSTERY_KNOB"]
    assert (cc.tau, cc.tau_alpha, cc.timer, cc.g, cc.fast, cc.clamp) == (4e-6, 1e-6, 300e-6, 0.0625, 5, True)
    assert cc.r_ai == pytest.approx(40e6 / 8 / PKT) and cc.r_hai == pytest.approx(200e6 / 8 / PKT)
    assert cc.ramp(400e9) == Marking(800e3, 3200e3, 0.2) and cc.ramp(100e9) is None
    assert dcqcn_of(parse_simai_conf(text.replace("CC_MODE 1", "CC_MODE 3"), "x.conf")) is None  # HPCC
