"""Packet-level agreement: SimAI-ns3 reference runs replayed rank by rank on the fluid network."""

import pytest

from netsim.network.packet_timing import ser_ns as _ser_ns
from netsim.network.routing import ecmp_hash, node_ip
from netsim.validation.simai import passed, validate


@pytest.mark.parametrize("transport", ["maxmin", "window"])
def test_uncongested_references_within_5_percent_on_every_gated_field(simai_dir, transport):
    # The window transport must not move the uncongested cases: their flows fill their windows.
    rows = validate(simai_dir / "ns3/manifest.json", transport=transport)
    totals = {r.case: r for r in rows if r.field == "total_us"}
    assert len(totals) == 4
    for r in rows:
        if r.gated and r.case != "ns3_gpt7B4L_32g_dcn":
            assert abs(r.rel_err) <= 0.05, (r.case, r.field, r.rel_err)
    # The TP-only and deterministic parts land much closer than the 5% goal.
    assert abs(totals["ns3_gpt13B4L_16g_spx"].rel_err) < 0.005


@pytest.mark.xfail(
    strict=True,
    reason="#12: congested DP needs the transport model (window, queues, DCQCN); "
    "reported as SimAI does (rank 0) the 7B DCN case is -9.8 % on the total, -16 % on DP",
)
def test_congested_7b_dcn_reference_within_5_percent(simai_dir):
    rows = validate(simai_dir / "ns3/manifest.json")
    assert passed([r for r in rows if r.case == "ns3_gpt7B4L_32g_dcn"], 0.05)


def test_replay_reports_rank_0_plus_100_ns_as_simai_prints_it(simai_dir):
    # simai_ns3_semantics.md sections 0.6 and 6.5: SimAI's total is rank 0's finish + 100 ns; the
    # slowest rank and the mean ride along. On the 7B DCN case rank 0 is not the slowest.
    rows = validate(simai_dir / "ns3/manifest.json")
    got = {(r.case, r.field): r.got_us for r in rows}
    case = "ns3_gpt7B4L_32g_dcn"
    assert got[(case, "total_max_us")] > got[(case, "total_us")] and got[(case, "total_mean_us")] > 0
    assert all(r.gated for r in rows if r.field in ("total_us", "exposed_tp_us") and r.expected_us)


def test_simai_conf_is_read_and_unknown_keys_reported():
    from netsim.config.simai_conf import parse_simai_conf

    c = parse_simai_conf("PACKET_PAYLOAD_SIZE 4000\nRATE_AI 50Mb/s\nKMIN_MAP 2 100000000000 400 400000000000 800\n"
                         "KMAX_MAP 2 100000000000 1600 400000000000 3200\nPMAX_MAP 2 100000000000 0.2 400000000000 0.2\n"
                         "FANCY_NEW_KNOB 3\n")  # fmt: skip
    assert c.payload == 4000 and c.rates["RATE_AI"] == pytest.approx(50e6 / 8)
    assert c.marking(400e9) == (800_000, 3_200_000, 0.2)
    assert c.unknown == ["FANCY_NEW_KNOB"]


def test_packet_payload_from_simai_conf_sets_link_payload_rate(simai_dir):
    from netsim.network.packet_timing import PacketTiming
    from netsim.network.routing import compile_network
    from netsim.network.topology import read_simai_topology

    net = compile_network(read_simai_topology(simai_dir / "ns3/ns3_ar16_dcn_1to1/topology.txt"))
    i = next(k for k in range(len(net.ends)) if abs(net.capacity[k] - 50e9) < 1)
    # 4000 B + 52 B headers at 400 Gbps: floor(4052 * 8 / 400) = 81 ns, plus a 1 ns ACK.
    assert PacketTiming(net, 4000).capacity[i] == pytest.approx(4000 / 82e-9)
    assert PacketTiming(net).capacity[i] == pytest.approx(9000 / 182e-9)


def test_packet_timing_facts():
    # simai_ns3_semantics.md section 4: 9052 B at 400G is 181 ns, a 60 B ACK 1 ns, NVLink 25 ns.
    assert _ser_ns(9052, 50e9) == 181 and _ser_ns(60, 50e9) == 1 and _ser_ns(9052, 360e9) == 25
    assert _ser_ns(9052, 3e9) == 3017  # 24 Gbps, one of NetZIP's extra ECN map rates
    assert node_ip(0) == 0x0B000001 and node_ip(257) == 0x0B000001 + (1 << 16) + (1 << 8)


def test_ecmp_hash_is_stable_and_seeded_by_switch():
    a = ecmp_hash(node_ip(0), node_ip(4), 10000 | (100 << 16), 36)
    assert a == ecmp_hash(node_ip(0), node_ip(4), 10000 | (100 << 16), 36)
    assert a != ecmp_hash(node_ip(0), node_ip(4), 10000 | (100 << 16), 37)


def test_replay_alltoall_closed_form(simai_dir):
    # 16 GPUs, 1 per server, 2 leaves of 8, 8 spines: an all-to-all of S over the TP group sends
    # S/16 to each of 15 peers at once. Each NIC moves 15/16 S at 9000 B per 182 ns (payload rate
    # with ACKs), half of it across the (non-blocking) spine layer.
    from netsim.network.topology import read_simai_topology
    from netsim.system.simai_replay import SimaiReplay
    from netsim.workload.simai_file import parse_simai_workload, to_program

    topo = read_simai_topology(simai_dir / "ns3/ns3_ar16_dcn_1to1/topology.txt")
    S = 2**28
    w = parse_simai_workload(
        "HYBRID_TRANSFORMER_FWD_IN_BCKWD model_parallel_NPU_group: 16 ep: 1 pp: 1 vpp: 1 "
        f"ga: 1 all_gpus: 16 checkpoints: 0 checkpoint_initiates: 0 pp_comm: 0\n1\n"
        f"a2a\t-1\t1\tALLTOALL\t{S}\t1\tNONE\t0\t1\tNONE\t0\t100\n"
    )
    bd = SimaiReplay(to_program(w), topo, send_lat=6e-6).run()
    rate = 9000 / 182e-9
    want = 15 / 16 * S / rate
    assert bd.total_us * 1e-6 == pytest.approx(want, rel=0.03)


def test_multi_nic_host_picks_nic_by_hash(tmp_path):
    from netsim.network.routing import compile_network
    from netsim.network.topology import load_topology

    p = tmp_path / "t.yaml"
    p.write_text(
        "name: t\nservers: 8\ngpus_per_server: 1\nnic: {count: 2, bandwidth: '400 Gbps'}\n"
        "fabric: {kind: leaf_spine, leaves: 2, hosts_per_leaf: 8, spines: 2}\n"
    )
    net = compile_network(load_topology(p))
    first_hops = {net.ends[net.data_route(0, 5, 10000 + k)[0]][1] for k in range(32)}
    assert len(first_hops) == 2  # both NICs carry flows
    assert net.data_route(0, 5, 10003) == net.data_route(0, 5, 10003)


def test_rank0_collectives_beside_simais_csv(simai_dir):
    # validate simai --collectives: every collective rank 0 ran, against the row's total comm in
    # SimAI's EndToEnd.csv (issue #12's evidence). The deterministic ones land within 1 %: TP rings
    # over NVLink or one ToR, and the 13B case's rail-local DP (its AG waits behind its RS, 18,146 us).
    from netsim.validation.simai import collectives

    rows = collectives(simai_dir / "ns3/manifest.json")
    by = {(r["case"], r["row"], r["column"]): r for r in rows}
    assert all(r["simai_us"] is not None and r["us"] is not None for r in rows)
    ag = by[("ns3_gpt13B4L_16g_spx", 0, "wg")]
    assert ag["op"] == "allgather" and ag["simai_us"] == pytest.approx(18146.3, abs=0.1)
    assert abs(ag["rel_err"]) < 0.01 and abs(by[("ns3_gpt13B4L_16g_spx", 1, "wg")]["rel_err"]) < 0.01
    tp = [r for r in rows if r["case"] == "ns3_gpt7B4L_32g_dcn" and r["column"] in ("fwd", "ig")]
    assert len(tp) == 11 and all(abs(r["rel_err"]) < 0.01 for r in tp)  # 9 forward rows, 2 in backward


def test_a_reference_csv_without_simais_columns_is_an_input_error(tmp_path):
    from netsim.errors import InputError
    from netsim.validation.simai import reference_rows

    p = tmp_path / "EndToEnd.csv"
    p.write_text("File name, Total time\ntest1, 10\n")
    with pytest.raises(InputError, match="total comm"):
        reference_rows(p)
