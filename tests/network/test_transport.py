"""The window transport against hand calculations (issue #12's transport tests)."""

import numpy as np
import pytest

from netsim.network.transport import WindowTransport, window_bytes

C = 50e9  # 400 Gbps in bytes/s


def _transport(n_links, queues, window, rtt_per_link=1e-6):
    cap = np.array([C] * n_links + [np.inf])
    data = np.array([rtt_per_link] * n_links + [0.0])
    ack = np.array([rtt_per_link] * n_links + [0.0])
    q = np.array(list(queues) + [False])
    return WindowTransport(cap, q, data, ack, window)


def _rows(paths, H=4, L=None):
    out = np.full((len(paths), H), L, dtype=np.int64)
    for i, p in enumerate(paths):
        out[i, : len(p)] = p
    return out


def test_window_limited_single_flow_runs_at_w_over_rtt():
    # One flow over two links (data) and two back (ACKs): RTT0 = 4 us. A 100 KB window is below the
    # 200 KB BDP, so the flow runs at W / RTT0 = 25 GB/s, half the line rate.
    t = _transport(4, [False] * 4, window=100e3)
    paths, acks = _rows([[0, 1]], L=4), _rows([[2, 3]], L=4)
    r = t.rates(paths, acks, np.array([np.inf]), np.ones(1))
    assert r[0] == pytest.approx(100e3 / 4e-6)


def test_flows_that_fill_their_window_keep_their_max_min_share():
    # Two greedy flows on one switch port (link 0): each gets C/2, whatever the queue they build.
    t = _transport(3, [True, False, False], window=400e3)
    paths, acks = _rows([[0], [0]], L=3), _rows([[1], [2]], L=3)
    r = t.rates(paths, acks, np.full(2, np.inf), np.ones(2))
    assert r == pytest.approx([C / 2, C / 2])


def test_a_queue_on_the_ack_path_slows_a_flow_by_its_delay():
    # Flows A, B are greedy at switch port 0 (RTT0 2 us each): the port queues 2W - C x 2 us bytes.
    # Flow D sends on its own link 1 and gets its ACKs back over [2, 0]: the receiving NIC sends the
    # ACK first (link 2 does not queue), then it waits behind port 0's queue: D's rate = W / (RTT0_D + d).
    W = 150e3
    t = _transport(3, [True, False, False], window=W)
    paths = _rows([[0], [0], [1]], L=3)
    acks = _rows([[2], [2], [2, 0]], L=3)
    r = t.rates(paths, acks, np.full(3, np.inf), np.ones(3))
    d = (2 * W - C * 2e-6) / C
    assert r[:2] == pytest.approx([C / 2, C / 2], rel=1e-3)
    assert r[2] == pytest.approx(W / (3e-6 + d), rel=1e-3)
    assert t.max_queue_bytes == pytest.approx(2 * W - C * 2e-6, rel=1e-3)


def test_simai_global_window_is_the_largest_bdp_plus_a_packet():
    # simai_ns3_semantics.md section 4: 2-tier 400G with 500 ns links: (2 x 4 x 500 ns + 4 x 180 ns)
    # x 50 B/ns = 236,000 B; a queue pair sends while below it: 27 packets, 243,000 B in flight.
    lat, rate = np.full(4, 500e-9), np.full(4, C)
    assert window_bytes([(0, 1, 2, 3)], lat, rate, 9000) == pytest.approx(243_000)


def test_acks_take_their_share_of_the_links_they_cross():
    # semantics section 6.3: a link moves a data packet in t_pkt and an ACK in t_ack, so a flow's
    # ACKs take t_ack / t_pkt of its rate on each link of its ACK path. Flow B runs alone on link 1:
    # line rate C. Its ACKs return over link 0, where flow A's data runs, so A gets C - s C.
    # Windows are large (no window limit).
    s = 1 / 181  # 60 B vs 9052 B at 400 Gbps: 1 ns vs 181 ns
    cap = np.array([C, C, C, C, np.inf])
    rtt = np.array([1e-6] * 4 + [0.0])
    share = np.array([s] * 4 + [0.0])
    t = WindowTransport(cap, np.array([False] * 5), rtt, rtt, window=10e6, ack_share=share)
    paths = _rows([[0], [1]], L=4)
    acks = _rows([[3], [0]], L=4)  # A's ACKs on link 3 (idle), B's ACKs on link 0
    r = t.rates(paths, acks, np.full(2, np.inf), np.ones(2))
    assert r[1] == pytest.approx(C) and r[0] == pytest.approx(C * (1 - s))
    # Symmetric (each flow's ACKs on the other's data link): r (1 + s) = C.
    r = t.rates(paths, _rows([[1], [0]], L=4), np.full(2, np.inf), np.ones(2))
    assert r == pytest.approx([C / (1 + s)] * 2)


def test_dcqcn_holds_a_marking_port_at_its_mean_queue():
    # Eight greedy flows on one 400G switch port with 243 KB windows and a 2 us base RTT: each keeps
    # W - (C/8) x 2 us = 230.5 KB queued, 1.844 MB in all, past KMIN (800 KB). With DCQCN the port
    # holds the fluid model's mean queue for eight such flows instead; the rates stay C/8.
    from netsim.network.dcqcn import Dcqcn, Marking, mean_queues

    ramp = Marking(800e3, 3200e3, 0.2)
    cc = Dcqcn.from_values({}, {}, 9000.0)
    cap = np.array([C] * 9 + [np.inf])
    rtt = np.array([1e-6] * 9 + [0.0])
    queues = np.array([True] + [False] * 9)
    paths, acks = _rows([[0]] * 8, L=9), _rows([[k] for k in range(1, 9)], L=9)
    plain = WindowTransport(cap, queues, rtt, rtt, 243e3)
    held = WindowTransport(cap, queues, rtt, rtt, 243e3, dcqcn=cc, ramps=[ramp] + [None] * 9)
    for t in (plain, held):
        assert t.rates(paths, acks, np.full(8, np.inf), np.ones(8)) == pytest.approx([C / 8] * 8)
    assert plain.max_queue_bytes == pytest.approx(8 * (243e3 - C / 8 * 2e-6))
    want = mean_queues(cc, ramp, C, np.arange(1, 65), 243e3, 243e3 / C)[7]
    assert ramp.kmin < want < plain.max_queue_bytes
    assert held.max_queue_bytes == pytest.approx(want)
