#!/usr/bin/python3
"""PyTorch baseline for `gossip-bench train`: the same MLP, batch, optimizer and
random data, timed the same way (warm-up, then the best of several rounds of
N steps). Prints progress on stderr and one JSON object on the last line of
stdout: {"samples_per_s": ..., "samples_per_cpu_s": ..., "torch": version, ...}
(samples per second of process CPU time: steadier than wall time on a busy host).

Run with Debian's interpreter: /usr/bin/python3 tools/bench/torch_baseline.py
"""
import argparse
import json
import sys
import time

import torch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--layers", default="784,256,128,10")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--activation", default="relu", choices=["relu", "tanh", "gelu"])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    layers = [int(v) for v in args.layers.split(",")]
    act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh,
           "gelu": lambda: torch.nn.GELU(approximate="tanh")}[args.activation]
    mods = []
    for i in range(len(layers) - 1):
        mods.append(torch.nn.Linear(layers[i], layers[i + 1]))
        if i + 2 < len(layers):
            mods.append(act())
    model = torch.nn.Sequential(*mods)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    loss_fn = torch.nn.CrossEntropyLoss()

    # A small pool of random batches, cycled, as the C++ bench does.
    pool = [(torch.rand(args.batch, layers[0]) * 2 - 1,
             torch.randint(0, layers[-1], (args.batch,))) for _ in range(8)]

    def step(i: int) -> float:
        x, y = pool[i % len(pool)]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for i in range(args.warmup):
        step(i)
    best = best_cpu = 0.0
    for r in range(args.rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(args.steps):
            step(i)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        sps = args.batch * args.steps / dt
        best = max(best, sps)
        best_cpu = max(best_cpu, args.batch * args.steps / dc)
        print(f"torch round {r}: {sps:.0f} samples/s", file=sys.stderr)

    print(json.dumps({"samples_per_s": best, "samples_per_cpu_s": best_cpu,
                      "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "batch": args.batch,
                      "layers": layers}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
