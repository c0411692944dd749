#!/usr/bin/python3
"""PyTorch baseline for `gossip-bench train --config configs/bench-gpt.json`.

Trains the byte-level GPT of include/gossip/train/gpt.hpp (GPT-2: pre-LN
blocks, causal multi-head attention with the mask as a registered buffer, a
4x MLP with GELU's tanh approximation, final LayerNorm, head tied to the token
embedding, no dropout), written as nanoGPT writes it, from the bench's
initial parameters (--params: float32 in gossip-train's flat layout) on the
bench's batch pool (--tokens: int32, pool x batch x (block + 1)). Each step:
zero_grad, forward, cross-entropy, backward, clip_grad_norm_, AdamW (decay on
tensors of two or more dimensions only), loss.item(). Timed as the C++ side:
warm-up steps, then the best of several rounds.

Prints progress on stderr and one JSON object on the last line of stdout:
{"tokens_per_s", "tokens_per_cpu_s", "first_loss", "torch", ...}. With
--profile, the autograd profiler's table of a few extra steps comes first.

Run with Debian's interpreter: /usr/bin/python3 tools/bench/torch_gpt_baseline.py
"""
import argparse
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class SelfAttention(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.c_attn = nn.Linear(a.embd, 3 * a.embd)
        self.c_proj = nn.Linear(a.embd, a.embd)
        self.heads = a.heads
        mask = torch.tril(torch.ones(a.block, a.block, dtype=torch.bool))
        self.register_buffer("mask", mask.view(1, 1, a.block, a.block), persistent=False)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        shape = (b, t, self.heads, c // self.heads)
        q, k, v = (z.view(shape).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(c // self.heads))
        att = att.masked_fill(~self.mask[:, :, :t, :t], float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(b, t, c)
        return self.c_proj(y)


class Mlp(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.c_fc = nn.Linear(a.embd, 4 * a.embd)
        self.c_proj = nn.Linear(4 * a.embd, a.embd)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.ln_1 = nn.LayerNorm(a.embd)
        self.attn = SelfAttention(a)
        self.ln_2 = nn.LayerNorm(a.embd)
        self.mlp = Mlp(a)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Gpt(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(a.vocab, a.embd),
            wpe=nn.Embedding(a.block, a.embd),
            h=nn.ModuleList([Block(a) for _ in range(a.layers)]),
            ln_f=nn.LayerNorm(a.embd)))
        self.lm_head = nn.Linear(a.embd, a.vocab, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied
        self.register_buffer("pos", torch.arange(a.block), persistent=False)

    def forward(self, tokens, targets):
        t = tokens.shape[1]
        x = self.transformer.wte(tokens) + self.transformer.wpe(self.pos[:t])
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def load_flat(model, path):
    """The flat layout is nanoGPT's parameter order without lm_head (tied)."""
    with open(path, "rb") as f:
        data = f.read()
    flat = torch.frombuffer(bytearray(data), dtype=torch.float32)
    named = [(n, p) for n, p in model.named_parameters() if not n.startswith("lm_head")]
    total = sum(p.numel() for _, p in named)
    if flat.numel() != total:
        sys.exit("params file holds %d floats, the model has %d" % (flat.numel(), total))
    offset = 0
    with torch.no_grad():
        for _, p in named:
            p.copy_(flat[offset:offset + p.numel()].view_as(p))
            offset += p.numel()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", required=True)
    ap.add_argument("--tokens", required=True)
    for key, default in (("vocab", 256), ("block", 128), ("layers", 4), ("heads", 4),
                         ("embd", 128), ("batch", 16), ("pool", 8), ("steps", 20),
                         ("warmup", 3), ("rounds", 3), ("threads", 1)):
        ap.add_argument("--" + key, type=int, default=default)
    for key, default in (("lr", 3e-3), ("beta1", 0.9), ("beta2", 0.95), ("eps", 1e-8),
                         ("weight-decay", 0.1), ("grad-clip", 1.0)):
        ap.add_argument("--" + key, type=float, default=default)
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    model = Gpt(a)
    load_flat(model, a.params)
    window = a.block + 1
    with open(a.tokens, "rb") as f:
        pool = torch.frombuffer(bytearray(f.read()), dtype=torch.int32).long()
    pool = pool.view(a.pool, a.batch, window)
    batches = [(pool[i, :, :-1].contiguous(), pool[i, :, 1:].contiguous())
               for i in range(a.pool)]

    params = [p for p in model.parameters()]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": a.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(a.beta1, a.beta2), eps=a.eps)

    def step(i: int) -> float:
        x, y = batches[i % a.pool]
        opt.zero_grad(set_to_none=True)
        loss = model(x, y)
        loss.backward()
        if a.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, a.grad_clip)
        opt.step()
        return loss.item()

    i = 0
    first_loss = None
    for _ in range(a.warmup):
        loss = step(i)
        first_loss = loss if first_loss is None else first_loss
        i += 1
    tokens = a.batch * a.block * a.steps
    best = best_cpu = 0.0
    for r in range(a.rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(a.steps):
            loss = step(i)
            first_loss = loss if first_loss is None else first_loss
            i += 1
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        best, best_cpu = max(best, tokens / dt), max(best_cpu, tokens / dc)
        print("torch round %d: %.0f tokens/s (%.1f ms/step, loss %.4f)" %
              (r, tokens / dt, 1e3 * dt / a.steps, loss), file=sys.stderr)

    if a.profile:
        steps = min(a.steps, 5)
        with torch.autograd.profiler.profile() as prof:
            for _ in range(steps):
                step(i)
                i += 1
        print("\npytorch profile (torch.autograd.profiler, %d steps; self CPU time per step):"
              % steps)
        rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in rows)
        print("  %-34s %10s %7s %8s" % ("operation", "ms/step", "share", "calls"))
        for e in rows[:20]:
            print("  %-34s %10.2f %6.1f%% %8d" % (e.key[:34], e.self_cpu_time_total / 1e3 / steps,
                                                  100 * e.self_cpu_time_total / total,
                                                  e.count // steps))
        print("  %-34s %10.2f" % ("(sum of every op's self time)", total / 1e3 / steps))

    print(json.dumps({"tokens_per_s": best, "tokens_per_cpu_s": best_cpu,
                      "first_loss": first_loss, "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "batch": a.batch, "block": a.block}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
