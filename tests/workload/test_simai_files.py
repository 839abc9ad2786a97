import json

from netsim.config.model import ModelConfig
from netsim.workload.aicb import aicb_param_count, aiob_sections, generate_aicb, padded_vocab, timing_from_sections
from netsim.workload.compute import gpu_compute
from netsim.workload.parallel import resolve_parallelism
from netsim.workload.simai_file import format_simai_workload, parse_simai_workload, read_simai_workload


def test_round_trip_every_shared_workload(simai_dir):
    files = sorted(simai_dir.glob("*/*/workload.txt"))
    assert len(files) >= 9
    for f in files:
        text = f.read_text()
        assert format_simai_workload(read_simai_workload(f)) == text, f


def test_header_parsing_like_stoi():
    w = parse_simai_workload(
        "HYBRID_TRANSFORMER_FWD_IN_BCKWD model_parallel_NPU_group: 8 ep: 1 pp: 4 vpp: 20 ga: 16 "
        "all_gpus: 256 checkpoints: 0 checkpoint_initiates: 0 pp_comm: 8388608.0\n0\n"
    )
    assert (w.tp, w.pp, w.vpp, w.ga, w.pp_comm_bytes, w.pp_comm) == (8, 4, 20, 16, 8388608, "8388608.0")


def test_padded_vocab():
    assert [padded_vocab(50257, t) for t in (8, 4, 2, 1)] == [51200, 50688, 50432, 50304]
    assert padded_vocab(128256, 8) == 129024


def _case_model(c):
    md, p = c["model"], c["parallel"]
    model = ModelConfig(
        name=md["name"],
        layers=md["layers"],
        hidden=md["hidden"],
        heads=md["heads"],
        ffn_hidden=md["ffn_hidden"],
        vocab=md["vocab"],
        gated_mlp=md["swiglu"],
        seq=p["seq"],
    )
    par = resolve_parallelism(
        model,
        c["cluster"]["gpus"],
        {k: p[k] for k in ("tp", "pp", "dp", "gbs", "mbs", "seq")} | {"sp": p["sequence_parallel"]},
    )
    return model, par


def test_param_count_worked_examples(simai_dir):
    cases = {c["name"]: c for c in json.loads((simai_dir / "analytical/manifest.json").read_text())["cases"]}
    # reference/aicb_workload_spec.md section 2 and section 9's table.
    assert aicb_param_count(*_case_model(cases["gpt13B_64g_tp8"])) == 1_724_907_520
    assert aicb_param_count(*_case_model(cases["llama70B_256g_tp8pp4_sp"])) == 2_539_978_752
    assert aicb_param_count(*_case_model(cases["netzip_artifact_gpt7B"])) == 1_622_147_072


def test_export_reproduces_aicb_byte_counts(simai_dir):
    manifest = json.loads((simai_dir / "analytical/manifest.json").read_text())
    for c in manifest["cases"]:
        model, par = _case_model(c)
        w = generate_aicb(model, par, timing_from_sections(aiob_sections(model, par, gpu_compute("H100"))))
        ref = read_simai_workload(simai_dir / "analytical" / c["workload"])
        key = lambda r: (r.name, r.fwd_comm, r.fwd_bytes, r.ig_comm, r.ig_bytes, r.wg_comm, r.wg_bytes)
        assert [key(r) for r in w.rows] == [key(r) for r in ref.rows], c["name"]
        assert (w.tp, w.pp, w.vpp, w.ga, w.all_gpus, w.pp_comm) == (
            ref.tp,
            ref.pp,
            ref.vpp,
            ref.ga,
            ref.all_gpus,
            ref.pp_comm,
        )
        if c["name"] != "netzip_artifact_gpt7B":  # its compute came from the NetZIP authors' GPU
            layer = lambda ws: [
                (r.fwd_compute, r.ig_compute, r.wg_compute)
                for r in ws.rows
                if r.name not in ("grad_param_compute", "embedding_layer")
            ]
            assert layer(w) == layer(ref), c["name"]
            # The documented difference: AICB's optimizer time is AIOB's measurement; netsim's is the
            # Adam step's memory traffic, several times lower (README, export simai).
            ours = next(r.ig_compute for r in w.rows if r.name == "grad_param_compute")
            theirs = next(r.ig_compute for r in ref.rows if r.name == "grad_param_compute")
            assert theirs / ours > 2.5, (c["name"], theirs, ours)  # 2.6x (13B) to 42x (7B on DCN+)


def test_tail_rows():
    from netsim.workload.catalog import resolve_model

    m = resolve_model("7B")
    par = resolve_parallelism(m, 512)
    tm = timing_from_sections(aiob_sections(m, par, gpu_compute("H100")))
    plain, tail = generate_aicb(m, par, tm), generate_aicb(m, par, tm, include_tail=True)
    assert len(tail.rows) - len(plain.rows) == 7
    assert tail.rows[-1].fwd_bytes == 4 and tail.rows[-7].fwd_bytes == 4 * 2048


def test_read_aiob_timing_file(tmp_path):
    # reference/aicb_workload_spec.md section 6.2: ATT = (28+181+97+60)*1000, MLP = (28+483+14+241)*1000,
    # param_time min and avg 11356 us.
    from netsim.workload.aicb import read_aiob_timing

    sections = [
        ("Emb", 28),
        ("layernorm", 28),
        ("atten_qkv", 181),
        ("atten_flash", 97),
        ("atten_linear", 60),
        ("layernorm2", 28),
        ("mlp_linear_1", 483),
        ("mlp_gelu", 14),
        ("mlp_linear_2", 241),
        ("param_time", 11356),
    ]
    text = "train_iter:10\n" + "".join(
        f"{n}:\n    time_gpu_max: {v}\n    time_gpu_min: {v}\n    time_gpu_avg: {v}\n" for n, v in sections
    )
    f = tmp_path / "aiob.txt"
    f.write_text(text)
    t = read_aiob_timing(f)
    assert (t.att, t.mlp, t.emb, t.gf + t.gb) == (366000, 766000, 28000, 22712000)
