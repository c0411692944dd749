#!/usr/bin/env python3
"""PyTorch's GPT training throughput on a CUDA device, next to cuda_gpt_bench.

tools/gpu_check runs it with the same shape, batch, precision and steps as
build/tests/cuda_gpt_bench: the byte-level GPT-2 of include/gossip/train/gpt.hpp
(pre-LayerNorm blocks, GELU tanh MLP, biases everywhere, tied head, no
dropout), AdamW (decay 0.1 on matrices and embeddings only, betas 0.9/0.95)
and clip_grad_norm_(1.0), in float32 eager mode (no torch.compile); attention
is F.scaled_dot_product_attention(is_causal=True) when this PyTorch has it
(its fused kernels: what a PyTorch user gets), else the explicit masked softmax.
Random byte windows; the steps are timed after a warm-up, synchronised with
torch.cuda.synchronize(). Model FLOPs per token and MFU use the same formula
as cuda_gpt_bench (6 P + 12 L C T). Prints one JSON line last; exits 0 with
{"skipped": reason} when torch or a CUDA device is missing.
"""
import argparse
import json
import math
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--embd", type=int, default=128)
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--tf32", action="store_true")
    ap.add_argument("--peak-tflops", type=float, default=0.0)
    a = ap.parse_args()
    try:
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
    except Exception as e:  # noqa: BLE001 - any import failure is a skip
        print(json.dumps({"skipped": f"import torch failed: {e}"}))
        return 0
    if not torch.cuda.is_available():
        print(json.dumps({"skipped": f"torch {torch.__version__}: torch.cuda.is_available() is False"}))
        return 0
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    sdpa = hasattr(F, "scaled_dot_product_attention")
    C, NH, T, V = a.embd, a.heads, a.block, 256

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1 = nn.LayerNorm(C)
            self.c_attn = nn.Linear(C, 3 * C)
            self.c_proj = nn.Linear(C, C)
            self.ln_2 = nn.LayerNorm(C)
            self.c_fc = nn.Linear(C, 4 * C)
            self.mlp_proj = nn.Linear(4 * C, C)
            self.register_buffer("mask", torch.tril(torch.ones(T, T, dtype=torch.bool)))

        def attn(self, x):
            B, Tn, _ = x.shape
            q, k, v = self.c_attn(x).split(C, dim=2)
            q, k, v = (t.view(B, Tn, NH, C // NH).transpose(1, 2) for t in (q, k, v))
            if sdpa:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                att = (q @ k.transpose(-2, -1)) / math.sqrt(C // NH)
                att = att.masked_fill(~self.mask[:Tn, :Tn], float("-inf")).softmax(-1)
                y = att @ v
            return self.c_proj(y.transpose(1, 2).contiguous().view(B, Tn, C))

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(V, C)
            self.wpe = nn.Embedding(T, C)
            self.h = nn.ModuleList(Block() for _ in range(a.layers))
            self.ln_f = nn.LayerNorm(C)

        def forward(self, idx, targets):
            pos = torch.arange(idx.shape[1], device=idx.device)
            x = self.wte(idx) + self.wpe(pos)
            for blk in self.h:
                x = blk(x)
            logits = self.ln_f(x) @ self.wte.weight.t()
            return F.cross_entropy(logits.view(-1, V), targets.view(-1))

    dev = torch.device("cuda")
    torch.manual_seed(1)
    model = GPT().to(dev)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    try:
        opt = torch.optim.AdamW(groups, lr=3e-4, betas=(0.9, 0.95), fused=True)
        fused = True
    except (TypeError, RuntimeError):
        opt = torch.optim.AdamW(groups, lr=3e-4, betas=(0.9, 0.95))
        fused = False
    g = torch.Generator(device="cpu").manual_seed(1)
    pool = [torch.randint(0, 256, (a.batch, T + 1), generator=g).to(dev) for _ in range(4)]

    def step(k):
        w = pool[k % len(pool)]
        loss = model(w[:, :-1], w[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    for k in range(a.warmup):
        step(k)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for k in range(a.steps):
        loss = step(k)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    params = sum(p.numel() for p in model.parameters())
    flops_per_token = 6 * params + 12 * a.layers * C * T
    tokens_per_s = a.steps * a.batch * T / dt
    achieved = tokens_per_s * flops_per_token / 1e12
    out = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "attention": "sdpa" if sdpa else "explicit",
        "fused_adamw": fused,
        "params": params,
        "batch": a.batch,
        "precision": "tf32" if a.tf32 else "fp32",
        "steps": a.steps,
        "torch_tokens_per_s": tokens_per_s,
        "flops_per_token": flops_per_token,
        "achieved_tflops": achieved,
        "mfu": achieved / a.peak_tflops if a.peak_tflops > 0 else None,
        "final_loss": float(loss),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
