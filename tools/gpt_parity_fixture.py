#!/usr/bin/python3
"""Writes the GPT family's PyTorch parity fixture.

Builds the byte-level GPT of include/gossip/train/gpt.hpp in PyTorch (written
here from the architecture's definition: pre-LayerNorm blocks, causal
multi-head attention, a 4x MLP with GELU's tanh approximation, a final
LayerNorm, the head tied to the token embedding), gives it its own random
weights, and records what the C++ side must reproduce:

  params        the weights in gossip-train's flat layout (the tensor table's
                order: nanoGPT's state_dict order without lm_head), float32
  tokens        one batch, B x T bytes (int32); targets: the next bytes
  logits        B x T x 256, computed in float64 from those float32 weights
  loss          mean cross-entropy over the B T positions (nats)
  grads         d loss / d params in the flat layout
  adamw_losses  the loss before each of 10 AdamW steps on the same batch
                (settings in the metadata: decay on tensors of two or more
                dimensions only, global-norm gradient clipping)

The fixture is a safetensors file, so the C++ test reads it with the same
reader that checks gossip-export's output. The test does not depend on
PyTorch's random streams: every number it needs is in the file.

Regenerate (Debian's python3-torch, 1.13):
  tools/gpt_parity_fixture.py --out tests/fixtures/gpt_parity.safetensors

Check a gossip-export file by loading it into this PyTorch model (strict:
every name and shape must match, lm_head tied) and scoring a text:
  tools/gpt_parity_fixture.py --check-export model.safetensors --text FILE
prints the mean cross-entropy (nats per byte) over the file's first windows
of block + 1 bytes.
"""
import argparse
import json
import math
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIG = {"vocab": 256, "block": 8, "layers": 2, "heads": 2, "embd": 16}
BATCH = 2
ADAMW = {"lr": 1e-2, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1,
         "grad_clip": 1.0, "steps": 10}


class SelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_attn = nn.Linear(c["embd"], 3 * c["embd"])
        self.c_proj = nn.Linear(c["embd"], c["embd"])
        self.heads = c["heads"]

    def forward(self, x):
        b, t, e = x.shape
        q, k, v = self.c_attn(x).split(e, dim=2)
        shape = (b, t, self.heads, e // self.heads)
        q, k, v = (z.view(shape).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(e // self.heads)
        mask = torch.tril(torch.ones(t, t, dtype=torch.bool))
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(b, t, e)
        return self.c_proj(y)


class Mlp(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_fc = nn.Linear(c["embd"], 4 * c["embd"])
        self.c_proj = nn.Linear(4 * c["embd"], c["embd"])

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1 = nn.LayerNorm(c["embd"])
        self.attn = SelfAttention(c)
        self.ln_2 = nn.LayerNorm(c["embd"])
        self.mlp = Mlp(c)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Gpt(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(c["vocab"], c["embd"]),
            wpe=nn.Embedding(c["block"], c["embd"]),
            h=nn.ModuleList([Block(c) for _ in range(c["layers"])]),
            ln_f=nn.LayerNorm(c["embd"])))
        self.lm_head = nn.Linear(c["embd"], c["vocab"], bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied

    def forward(self, tokens, targets):
        t = tokens.shape[1]
        x = self.transformer.wte(tokens) + self.transformer.wpe(torch.arange(t))
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))
        return logits, loss


def flat_tensors(model):
    """The parameters in the flat layout's order (lm_head is wte)."""
    return [(name, p) for name, p in model.named_parameters() if not name.startswith("lm_head")]


def write_safetensors(path, tensors, metadata):
    """tensors: name -> (dtype string, shape, bytes)."""
    header = {"__metadata__": metadata}
    offset = 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, _, data in tensors.values():
            f.write(data)


def f32(values):
    values = [float(v) for v in values]
    return ("F32", [len(values)], struct.pack("<%df" % len(values), *values))


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    codes = {"F32": ("f", torch.float32), "F64": ("d", torch.float64), "I32": ("i", torch.int32)}
    tensors = {}
    for name, info in header.items():
        code, dtype = codes[info["dtype"]]
        begin, end = info["data_offsets"]
        count = (end - begin) // struct.calcsize(code)
        values = struct.unpack("<%d%s" % (count, code), data[begin:end])
        tensors[name] = torch.tensor(values, dtype=dtype).reshape(info["shape"])
    return meta, tensors


def check_export(path, text_path, windows=64):
    meta, tensors = read_safetensors(path)
    config = {k: int(meta[k]) for k in ("vocab", "block", "layers", "heads", "embd")}
    model = Gpt(config).double()
    state = {k: v.double() for k, v in tensors.items()}
    state["lm_head.weight"] = state["transformer.wte.weight"]
    model.load_state_dict(state, strict=True)
    data = open(text_path, "rb").read()
    block = config["block"]
    rows = [list(data[i * block:i * block + block + 1]) for i in range(windows)]
    rows = torch.tensor([r for r in rows if len(r) == block + 1])
    with torch.no_grad():
        _, loss = model(rows[:, :-1].contiguous(), rows[:, 1:].contiguous())
    print("%s: loaded into PyTorch (strict), %d tensors; %s: %.4f nats/byte over %d windows" %
          (path, len(tensors), text_path, loss.item(), rows.shape[0]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--check-export", metavar="SAFETENSORS")
    ap.add_argument("--text", metavar="FILE")
    args = ap.parse_args()
    if args.check_export:
        if not args.text:
            ap.error("--check-export needs --text FILE")
        check_export(args.check_export, args.text)
        return
    if not args.out:
        ap.error("--out FILE is required (or --check-export)")

    torch.manual_seed(args.seed)
    model = Gpt(CONFIG).double()
    with torch.no_grad():
        # Weights larger than GPT-2's initial ones, so that every gradient is
        # well above rounding; rounded to float32, which the C++ side holds.
        for name, p in flat_tensors(model):
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or \
                    name.endswith("ln_f.weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))
            p.copy_(p.float().double())
    tokens = torch.randint(0, CONFIG["vocab"], (BATCH, CONFIG["block"] + 1))
    inputs, targets = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()

    params = torch.cat([p.detach().reshape(-1) for _, p in flat_tensors(model)])
    logits, loss = model(inputs, targets)
    loss.backward()
    grads = torch.cat([p.grad.reshape(-1) for _, p in flat_tensors(model)])

    decay = [p for _, p in flat_tensors(model) if p.dim() >= 2]
    no_decay = [p for _, p in flat_tensors(model) if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": ADAMW["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=ADAMW["lr"], betas=(ADAMW["beta1"], ADAMW["beta2"]),
                            eps=ADAMW["eps"])
    losses = []
    for _ in range(ADAMW["steps"]):
        opt.zero_grad()
        _, step_loss = model(inputs, targets)
        losses.append(step_loss.item())
        step_loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), ADAMW["grad_clip"])
        opt.step()

    def i32(t):
        return ("I32", list(t.shape), struct.pack("<%di" % t.numel(), *t.reshape(-1).tolist()))

    tensors = {
        "params": f32(params.tolist()),
        "tokens": i32(inputs),
        "targets": i32(targets),
        "logits": ("F32", list(logits.shape),
                   struct.pack("<%df" % logits.numel(), *logits.detach().reshape(-1).tolist())),
        "loss": ("F64", [1], struct.pack("<d", loss.item())),
        "grads": f32(grads.tolist()),
        "adamw_losses": ("F64", [len(losses)], struct.pack("<%dd" % len(losses), *losses)),
    }
    metadata = {k: str(v) for k, v in CONFIG.items()}
    metadata.update({"adamw_" + k: str(v) for k, v in ADAMW.items()})
    metadata["torch"] = torch.__version__
    write_safetensors(args.out, tensors, metadata)
    print("wrote %s: %d parameters, loss %.6f, adamw losses %.4f -> %.4f" %
          (args.out, params.numel(), loss.item(), losses[0], losses[-1]))


if __name__ == "__main__":
    main()
