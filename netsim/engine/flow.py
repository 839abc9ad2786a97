"""The flow backend: SimPy clock, fluid max-min network, collectives as flows.

Symmetric ranks are folded: every rank of a pipeline stage runs the same program at the same
time, so one SimPy process drives a whole stage, and each collective it issues launches the
flows of every group of that kind in that stage at once (all TP groups, all DP groups), so
the network sees the full contention. A stage's collective ends when all its groups finish.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import simpy

from netsim.collectives.closed_form import bus_factor
from netsim.collectives.engine import CollectiveEngine
from netsim.engine.analytical import parse_comm
from netsim.engine.result import Breakdown
from netsim.network.fluid import FluidNetwork
from netsim.network.routing import compile_network
from netsim.network.topology import Topology
from netsim.workload.parallel import Parallelism, dp_group, rank_of, tp_group
from netsim.workload.rows import ACTIVATION, ACTIVATION_GRAD, GRADIENT, PARAMETER


def new_network(topo: Topology, ideal: bool = False, fidelity: str = "macro", spray: bool = False):
    env = simpy.Environment()
    net = compile_network(topo)
    fluid = FluidNetwork(env, net.capacity, net.latency)
    coll = CollectiveEngine(
        env, fluid, net, alpha=0.0 if ideal else topo.alpha, fidelity=fidelity, ideal=ideal, spray=spray
    )
    return env, net, fluid, coll


def bench_collective(
    topo: Topology,
    op: str,
    ranks: list[int],
    size: int,
    algo: str = "ring",
    fidelity: str = "macro",
    ideal: bool = False,
    spray: bool = False,
    compression=None,
    traffic: str = "default",
) -> dict:
    """Time one collective over `ranks` (nccl-tests' algbw/busbw, in GB/s of 1e9 bytes)."""
    env, net, fluid, coll = new_network(topo, ideal, fidelity, spray)
    if compression is not None:
        compression.attach(coll)
    finished = {}
    groups = [ranks] if op != "sendrecv" else [ranks[:2]]
    coll.run(op, groups, size, lambda: finished.setdefault("t", env.now), algo=algo, traffic=traffic)
    env.run()
    t = finished["t"]
    n = len(groups[0])
    algbw = size / t / 1e9 if t > 0 else float("inf")
    return {
        "op": op,
        "ranks": n,
        "bytes": size,
        "time_us": t * 1e6,
        "algbw_GBps": algbw,
        "busbw_GBps": algbw * bus_factor(op, n),
        "flows": fluid.flows_started,
        "solves": fluid.solves,
    }


# ---- training iterations ---------------------------------------------------------------------


@dataclass
class StageStats:
    compute: float = 0.0
    tp: float = 0.0
    ep: float = 0.0
    pp: float = 0.0
    bubble: float = 0.0
    end: float = 0.0
    spans: list = field(default_factory=list)


def _groups(par: Parallelism, stage: int, replicas: int):
    """A stage's TP groups (of the simulated DP replicas) and all its DP groups."""
    tp, dp = par.tp, par.dp
    tpg = [tp_group(rank_of(0, d, stage, tp, dp), tp, dp) for d in range(replicas)]
    dpg = [dp_group(rank_of(t, 0, stage, tp, dp), tp, dp) for t in range(tp)]
    return tpg, dpg


FOLD_ABOVE = 4096  # GPUs; larger clusters simulate TP and PP traffic of FOLD_REPLICAS DP replicas


def simulate_pipeline(
    programs: list,
    topo: Topology,
    par: Parallelism,
    ideal: bool = False,
    fidelity: str = "macro",
    schedule: str = "1f1b",
    compression=None,
    replicas: int | None = None,
) -> Breakdown:
    """One training iteration: every stage runs 1F1B (or GPipe) over the fluid network.

    `replicas`: how many DP replicas' TP and pipeline traffic to put on the network (all by
    default up to FOLD_ABOVE GPUs, else 8). DP collectives always involve every rank. Replicas
    are symmetric, so this is exact when their TP/PP traffic shares no link with another
    replica's, and otherwise leaves out some contention on shared fabric links.
    """
    env, net, fluid, coll = new_network(topo, ideal, fidelity)
    if compression is not None:
        compression.attach(coll)
    p, m = par.pp, par.microbatches
    if replicas is None:
        replicas = par.dp if par.world <= FOLD_ABOVE else min(par.dp, 8)
    replicas = max(1, min(replicas, par.dp))
    stats = [StageStats() for _ in range(p)]
    recv_fwd = [[env.event() for _ in range(m)] for _ in range(p)]
    recv_bwd = [[env.event() for _ in range(m)] for _ in range(p)]
    sent_at: dict[tuple, float] = {}

    def collective(op, groups, size, traffic, kind):
        ev = env.event()
        coll.run(op, groups, size, ev.succeed, traffic=traffic, kind=kind)
        return ev

    def p2p(i_from: int, i_to: int, j: int, size: int, target, traffic: str):
        pairs = [
            (rank_of(t, d, i_from, par.tp, par.dp), rank_of(t, d, i_to, par.tp, par.dp))
            for t in range(par.tp)
            for d in range(replicas)
        ]
        sent_at[(id(target), j)] = env.now
        ev = target[i_to][j]
        coll.run("sendrecv", [list(x) for x in pairs], size, ev.succeed, traffic=traffic, kind="PP")

    def stage(i: int):
        prog = programs[i]
        st = stats[i]
        tpg, dpg = _groups(par, i, replicas)
        dp_tail = [None]

        def run_row_comm(comm, size, column, traffic):
            op, kind = parse_comm(comm, column)
            if op is None or size <= 0:
                return None
            groups = tpg if kind in ("TP", "EP") else dpg
            return kind, collective(op, groups, size, traffic, kind)

        def wait_recv(target, j):
            ev = target[i][j]
            t0 = env.now
            yield ev
            waited = env.now - t0
            transfer = env.now - sent_at.get((id(target), j), env.now)
            comm = min(waited, transfer)
            st.pp += comm
            st.bubble += waited - comm
            if waited > 0:
                st.spans.append(("PP recv", f"mb{j} wait", t0, waited, "stall"))

        gpu_debt = [0.0]  # GPU codec kernels of overlapped collectives, paid on the compute stream

        def compute(ns, name):
            sec = ns * 1e-9
            if gpu_debt[0] > 0:
                st.spans.append(("compute", "codec kernels", env.now, gpu_debt[0], "codec"))
                sec, gpu_debt[0] = sec + gpu_debt[0], 0.0
            if sec > 0:
                st.spans.append(("compute", name, env.now, ns * 1e-9, "compute"))
                st.compute += ns * 1e-9
                return env.timeout(sec)
            return None

        def blocking(comm, size, column, traffic, name):
            r = run_row_comm(comm, size, column, traffic)
            if r is None:
                return
            kind, ev = r
            t0 = env.now
            yield ev
            d = env.now - t0
            if kind == "EP":
                st.ep += d
            else:
                st.tp += d
            st.spans.append(("TP comm", name, t0, d, "collective"))

        def enqueue_dp(op, size, traffic, name):
            done = env.event()

            def go():
                t0 = env.now

                def fin():
                    st.spans.append(("DP comm", name, t0, env.now - t0, "collective"))
                    done.succeed()

                coll.run(op, dpg, size, fin, traffic=traffic, kind="DP")

            cs = coll.compression
            if cs is not None and cs.p.placement == "gpu" and cs.applies(traffic, "DP"):
                gpu_debt[0] += cs.collective_codec_s(op, par.dp, size)
            prev = dp_tail[0]
            if prev is None or prev.processed:
                go()
            else:
                prev.callbacks.append(lambda _e: go())
            dp_tail[0] = done

        def fwd(j):
            if i > 0:
                yield from wait_recv(recv_fwd, j)
            for r in prog.body:
                ev = compute(r.fwd_compute, f"{r.name} fwd")
                if ev is not None:
                    yield ev
                yield from blocking(r.fwd_comm, r.fwd_bytes, "fwd", ACTIVATION, f"{r.name} fwd")
            if i < p - 1:
                p2p(i, i + 1, j, prog.pp_bytes, recv_fwd, ACTIVATION)

        def bwd(j):
            if i < p - 1:
                yield from wait_recv(recv_bwd, j)
            for k in range(len(prog.body) - 1, -1, -1):
                r = prog.body[k]
                ev = compute(r.ig_compute, f"{r.name} ig")
                if ev is not None:
                    yield ev
                yield from blocking(r.ig_comm, r.ig_bytes, "ig", ACTIVATION_GRAD, f"{r.name} ig")
                ev = compute(r.wg_compute, f"{r.name} wg")
                if ev is not None:
                    yield ev
                if j == m - 1 and k in prog.buckets:
                    enqueue_dp(prog.grad_op.lower().replace("_", ""), prog.buckets[k], GRADIENT, f"grads@{r.name}")
            if i > 0:
                p2p(i, i - 1, j, prog.pp_bytes, recv_bwd, ACTIVATION_GRAD)

        def proc():
            if schedule == "gpipe":
                order = [("f", j) for j in range(m)] + [("b", j) for j in range(m)]
            else:
                warm = min(p - i - 1, m)
                order = [("f", j) for j in range(warm)]
                for j in range(m - warm):
                    order += [("f", warm + j), ("b", j)]
                order += [("b", j) for j in range(m - warm, m)]
            for kind, j in order:
                yield from (fwd(j) if kind == "f" else bwd(j))
            if dp_tail[0] is not None:
                t0 = env.now
                yield dp_tail[0]
                if env.now > t0:
                    st.spans.append(("compute", "wait for DP", t0, env.now - t0, "stall"))
            ev = compute(prog.optimizer_ns, "optimizer step")
            if ev is not None:
                yield ev
            if prog.param_allgather_bytes:
                t0 = env.now
                yield collective("allgather", dpg, prog.param_allgather_bytes, PARAMETER, "DP")
                st.spans.append(("DP comm", "param all-gather", t0, env.now - t0, "collective"))
            st.end = env.now

        return proc()

    for i in range(p):
        env.process(stage(i))
    env.run()
    end = max(s.end for s in stats)
    k = max(range(p), key=lambda i: (stats[i].end, -i))
    st = stats[k]
    bd = Breakdown()
    bd.compute_us = st.compute * 1e6
    bd.exposed_tp_us = st.tp * 1e6
    bd.exposed_ep_us = st.ep * 1e6
    bd.exposed_pp_us = st.pp * 1e6
    bd.bubble_us = st.bubble * 1e6
    bd.total_us = end * 1e6
    bd.exposed_dp_us = max(
        0.0, bd.total_us - bd.compute_us - bd.exposed_tp_us - bd.exposed_ep_us - bd.exposed_pp_us - bd.bubble_us
    )
    bd.exposed_comm_us = bd.exposed_tp_us + bd.exposed_ep_us + bd.exposed_pp_us + bd.exposed_dp_us
    bd.timeline = {f"stage {i} (rank {rank_of(0, 0, i, par.tp, par.dp)})": s.spans for i, s in enumerate(stats)}
    if coll.compression is not None:
        bd.extra["compression"] = coll.compression.acct.report()
    bd.extra.update(
        {
            "critical_stage": k,
            "flows": fluid.flows_started,
            "solves": fluid.solves,
            "simulated_dp_replicas": replicas,
            **link_report(net, fluid, end),
        }
    )
    return bd


def link_report(net, fluid, duration: float, top: int = 5) -> dict:
    """Mean and max utilisation per link tier, and the busiest links."""
    if duration <= 0:
        return {"link_utilization": {}, "busiest_links": []}
    u = fluid.utilisation(duration)[:-1]
    tiers: dict[str, list[float]] = {}
    for i, name in enumerate(net.tier_name):
        tiers.setdefault(name, []).append(u[i])
    util = {name: {"mean": float(np.mean(v)), "max": float(np.max(v))} for name, v in sorted(tiers.items())}
    order = np.argsort(-u)[:top]
    busiest = [
        {"link": f"{net.ends[i][0]}->{net.ends[i][1]}", "tier": net.tier_name[i], "utilization": float(u[i])}
        for i in order
        if u[i] > 0
    ]
    return {"link_utilization": util, "busiest_links": busiest}


PAYLOAD, HEADERS, ACK = 9000, 52, 60  # bytes: SimAI.conf PACKET_PAYLOAD_SIZE, RoCE headers, ACK frame


def _ser_ns(nbytes: int, rate: float) -> int:
    """ns-3 serialisation: whole nanoseconds, truncated (Time integer division)."""
    return int(nbytes * 8 * 1e9 // (rate * 8))


def apply_packet_timing(net, fluid, coll) -> None:
    """What SimAI's packet-level run adds to a fluid flow (simai_ns3_semantics.md sections 4-6):
    a link moves 9000 B of payload per truncated serialisation time of 9052 B, plus one ACK
    frame's time where the reverse direction carries data (every ring link here does; NVLink
    ACKs take 0 ns); a flow is acknowledged (hops-1) store-and-forward packet times and one
    ACK return trip after its last byte drains."""
    cap = net.capacity.copy()
    per_link_extra = {}
    for i, (a, b) in enumerate(net.ends):
        rate = net.capacity[i]
        t_pkt = _ser_ns(PAYLOAD + HEADERS, rate)
        t_ack = _ser_ns(ACK, rate)
        cap[i] = PAYLOAD / ((t_pkt + t_ack) * 1e-9)
        per_link_extra[i] = (t_pkt * 1e-9, (net.latency[i] + t_ack * 1e-9))
    fluid.capacity = cap

    def hook(coll_, src, dst, links, size, on_done, traffic, on_drain=None):
        ser = [per_link_extra[l][0] for l in links]
        back = sum(per_link_extra[l][1] for l in links)
        extra = sum(ser[1:]) + back
        coll_.fluid.start(links, size, on_done, extra_delay=extra, on_drain=on_drain)

    coll.flow_hook = hook


def simulate_rows(w, topo: Topology, ideal: bool = False, fidelity: str = "macro", compression=None) -> Breakdown:
    """A SimAI workload file as SimAI's packet-level backend executes it (simai.md section 2):
    forward rows in order, backward in reverse; fwd/ig collectives block, wg collectives do not;
    each rank has one collective queue (waiting collectives run newest first) and adds the row's
    update time after each collective. PP is not simulated (as in SimAI); DP = GPUs / TP. Ranks
    run in lockstep (folded); the per-rank replay of SimAI's own decomposition, for validation, is
    engine/simai_replay.py.
    """
    env, net, fluid, coll = new_network(topo, ideal, fidelity)
    if compression is not None:
        compression.attach(coll)
    G, tp = topo.num_gpus, w.tp
    dp = G // tp
    # SimAI's packet backend has no PP: every GPU is in one stage, so DP = GPUs / TP.
    tpg = [tp_group(d * tp, tp, dp) for d in range(dp)]
    dpg = [dp_group(t, tp, dp) for t in range(tp)]
    queue: list = []  # waiting (op, groups, size, event, update_ns), newest last
    running = [False]
    stats = {"compute": 0.0, "blocking": 0.0, "spans": []}

    def pump():
        if running[0] or not queue:
            return
        op, groups, size, ev, upd, label, traffic, kind = queue.pop()  # LIFO: newest waiting first
        running[0] = True
        t0 = env.now

        def fin():
            running[0] = False
            stats["spans"].append(("comm queue", label, t0, env.now - t0, "collective"))
            env.timeout(upd * 1e-9).callbacks.append(lambda _e: ev.succeed())
            pump()

        coll.run(op, groups, size, fin, traffic=traffic, kind=kind)

    def issue(comm, size, column, upd, label, traffic="default"):
        op, kind = parse_comm(comm, column)
        if op is None or size <= 0:
            return None
        ev = env.event()
        queue.append((op, tpg if kind in ("TP", "EP") else dpg, size, ev, upd, label, traffic, kind))
        pump()
        return ev

    def compute(ns, name):
        stats["compute"] += ns * 1e-9
        stats["spans"].append(("compute", name, env.now, ns * 1e-9, "compute"))
        return env.timeout(ns * 1e-9)

    def proc():
        pending = []
        for r in w.rows:
            yield compute(r.fwd_compute, f"{r.name} fwd")
            size = 4096 if 0 < r.fwd_bytes < 4096 else r.fwd_bytes
            ev = issue(r.fwd_comm, size, "fwd", r.update, f"{r.name} fwd", r.fwd_class)
            if ev is not None:
                t0 = env.now
                yield ev
                stats["blocking"] += env.now - t0
        for r in reversed(w.rows):
            yield compute(r.ig_compute, f"{r.name} ig")
            ev = issue(r.ig_comm, r.ig_bytes, "ig", r.update, f"{r.name} ig", r.ig_class)
            if ev is not None:
                t0 = env.now
                yield ev
                stats["blocking"] += env.now - t0
            yield compute(r.wg_compute, f"{r.name} wg")
            ev = issue(r.wg_comm, r.wg_bytes, "wg", r.update, f"{r.name} wg", r.wg_class)
            if ev is not None:
                pending.append(ev)
        if pending:
            yield env.all_of(pending)
        stats["end"] = env.now

    env.process(proc())
    env.run()
    end = stats["end"]
    bd = Breakdown()
    bd.compute_us = stats["compute"] * 1e6
    bd.exposed_tp_us = stats["blocking"] * 1e6
    bd.total_us = end * 1e6
    bd.exposed_dp_us = max(0.0, bd.total_us - bd.compute_us - bd.exposed_tp_us)
    if w.pp > 1:
        # The file is one stage with its micro-batches unrolled; SimAI's packet backend does not
        # simulate the pipeline, so netsim adds the 1F1B bubble of uniform stages:
        # (p-1) x one micro-batch's compute + blocking communication.
        bd.bubble_us = (w.pp - 1) * (bd.compute_us + bd.exposed_tp_us) / max(1, w.ga)
        bd.total_us += bd.bubble_us
    bd.exposed_comm_us = bd.exposed_tp_us + bd.exposed_dp_us
    bd.timeline = {"rank 0 (all ranks in lockstep)": stats["spans"]}
    bd.extra = {"flows": fluid.flows_started, "solves": fluid.solves, **link_report(net, fluid, end)}
    if coll.compression is not None:
        bd.extra["compression"] = coll.compression.acct.report()
    return bd
