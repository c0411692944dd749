#!/usr/bin/python3
"""PyTorch time-to-accuracy baseline for tools/bench/time_to_accuracy: the wall
time for PyTorch to first reach a test accuracy (default 0.88) on Fashion-MNIST
with the same MLP, data, preprocessing, initialisation, batch and optimizer as
gossip-train's configs/single.json, either in one process (--mode single) or
with DistributedDataParallel over gloo, N ranks on localhost (--mode ddp).

What is matched, and how (see src/data/*, src/train/model.cpp):
  data   Debian's dataset-fashion-mnist idx files, pixels / 255 (the default
         data.normalize for fashion_mnist is "none"), all 10,000 test rows.
  model  784-256-128-10 relu, softmax cross-entropy (mean over the batch).
  init   He/Kaiming uniform, bound sqrt(6 / fan_in), biases 0, on every layer
         (what init_parameters does for relu; torch's default differs), drawn
         from torch's generator (same distribution, not the same numbers).
  optim  SGD lr 0.02, momentum 0.9, no weight decay; --schedule constant (the
         default) or cosine to 0 over --epochs epochs of the process's own data,
         per step (what gossip-train's cosine with total_steps 0 does; the
         time_to_accuracy driver passes the swarm config's schedule and epochs).
  batch  64 per process; each epoch reshuffled; the last partial batch kept.
  ddp    each rank: batch 64 on a DistributedSampler shard, the same lr (DDP
         averages gradients, so one step consumes 8 x 64 rows), one torch thread.

Clock: starts once the data is loaded and (ddp) every rank is up, after a
barrier; start-up is excluded from time_s but reported as startup_s. cpu_s is the
CPU time (user + system, all ranks summed) spent up to that same evaluation: on a
shared host it moves less with other people's load than wall time does. Test
accuracy is evaluated every ~1/4 epoch of the process's own data (rank 0 for
ddp, while the other ranks wait at the next all-reduce); eval time is inside
time_s (it is wall time) and also reported alone as eval_s. Stops at the target
or after --max-s of training (time_s null, best_accuracy says how far it got).

Prints progress on stderr and one JSON object on the last line of stdout.
Run with Debian's interpreter: /usr/bin/python3 tools/bench/torch_time_to_accuracy.py --mode ddp
"""
import argparse
import gzip
import json
import math
import os
import sys
import time

# One thread per process means one BLAS thread too: Debian's torch calls the system BLAS
# (OpenBLAS, pthreads), which ignores torch.set_num_threads and otherwise uses every core.
# Set before torch loads; spawned DDP ranks inherit it.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

DATA_DIR = "/usr/share/datasets/fashion-mnist"
THRESHOLDS = (0.85, 0.88)


def read_idx(path: str) -> torch.Tensor:
    """An idx (optionally .gz) file of unsigned bytes as a uint8 tensor."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    data = torch.frombuffer(bytearray(raw[4 + 4 * ndim:]), dtype=torch.uint8)
    return data.reshape(dims)


def load(data_dir: str):
    def pick(base: str) -> str:
        for name in (base + ".gz", base):
            p = os.path.join(data_dir, name)
            if os.path.isfile(p):
                return p
        raise FileNotFoundError(f"{data_dir}/{base}.gz not found "
                                "(install the Debian package dataset-fashion-mnist, or pass --data-dir)")

    def images(base: str) -> torch.Tensor:
        x = read_idx(pick(base))
        return (x.reshape(x.shape[0], -1).to(torch.float32) / 255.0).contiguous()

    def labels(base: str) -> torch.Tensor:
        return read_idx(pick(base)).to(torch.int64)

    return (images("train-images-idx3-ubyte"), labels("train-labels-idx1-ubyte"),
            images("t10k-images-idx3-ubyte"), labels("t10k-labels-idx1-ubyte"))


def make_model(layers, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    mods = []
    for i in range(len(layers) - 1):
        lin = torch.nn.Linear(layers[i], layers[i + 1])
        bound = math.sqrt(6.0 / layers[i])  # He uniform, as init_parameters for relu
        torch.nn.init.uniform_(lin.weight, -bound, bound)
        torch.nn.init.zeros_(lin.bias)
        mods.append(lin)
        if i + 2 < len(layers):
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods)


def accuracy(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        correct = 0
        for i in range(0, x.shape[0], 2500):
            correct += (net(x[i:i + 2500]).argmax(1) == y[i:i + 2500]).sum().item()
    return correct / x.shape[0]


class Tracker:
    """Rank-0 bookkeeping: evaluation curve, first time at each threshold."""

    def __init__(self, target: float, max_s: float):
        self.target, self.max_s = target, max_s
        self.t0 = time.monotonic()
        self.eval_s = 0.0
        self.best = 0.0
        self.curve = []
        self.reached = {f"{t:.2f}": None for t in sorted(set(THRESHOLDS + (target,)))}
        self.reached_cpu = dict(self.reached)
        self.fresh = []  # thresholds first reached by the latest evaluation
        self.cpu_s = None

    def evaluate(self, net, x, y, steps: int, epoch: float) -> bool:
        """Evaluates; True when training should stop (target reached or time up)."""
        e0 = time.monotonic()
        acc = accuracy(net, x, y)
        e1 = time.monotonic()
        self.eval_s += e1 - e0
        t = e1 - self.t0
        self.best = max(self.best, acc)
        self.curve.append([round(t, 2), round(epoch, 3), round(acc, 4)])
        self.fresh = [k for k in self.reached if self.reached[k] is None and acc >= float(k)]
        for k in self.fresh:
            self.reached[k] = round(t, 3)
        print(f"  t={t:7.1f}s epoch={epoch:6.2f} steps={steps:6d} test_acc={acc:.4f}",
              file=sys.stderr, flush=True)
        return acc >= self.target or t >= self.max_s

    def note_cpu(self, cpu_s: float) -> None:
        """CPU seconds (all processes) spent since the clock started, as of the latest evaluation."""
        self.cpu_s = cpu_s
        self.curve[-1].append(round(cpu_s, 2))
        for k in self.fresh:
            self.reached_cpu[k] = round(cpu_s, 3)

    def result(self, steps: int, epoch: float) -> dict:
        t_end = time.monotonic() - self.t0
        return {"time_s": self.reached[f"{self.target:.2f}"], "target": self.target,
                "best_accuracy": self.best, "final_accuracy": self.curve[-1][2] if self.curve else None,
                "cpu_s": self.reached_cpu[f"{self.target:.2f}"],
                "time_to_accuracy_s": self.reached, "cpu_to_accuracy_s": self.reached_cpu,
                "train_wall_s": round(t_end, 3),
                "train_cpu_s": None if self.cpu_s is None else round(self.cpu_s, 3),
                "eval_s": round(self.eval_s, 3), "steps": steps, "epochs": round(epoch, 3),
                "evals": len(self.curve), "curve": self.curve}


def make_schedule(opt, args, per_epoch: int):
    """Per-step lr schedule: constant, or cosine from lr to 0 over args.epochs epochs."""
    if args.schedule == "constant":
        return None
    total = max(1, int(round(args.epochs * per_epoch)))
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: 0.5 * (1.0 + math.cos(math.pi * min(k, total) / total)))


def run_single(args, data) -> dict:
    x_train, y_train, x_test, y_test = data
    net = make_model(args.layers, args.seed)
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=args.momentum)
    loss_fn = torch.nn.CrossEntropyLoss()
    n = x_train.shape[0]
    per_epoch = math.ceil(n / args.batch)
    eval_every = max(1, round(per_epoch / args.evals_per_epoch))
    sched = make_schedule(opt, args, per_epoch)
    gen = torch.Generator().manual_seed(args.seed)
    tr = Tracker(args.target, args.max_s)
    c0 = time.process_time()
    steps, epoch, stop = 0, 0, False
    while not stop:
        order = torch.randperm(n, generator=gen)
        for b in range(per_epoch):
            idx = order[b * args.batch:(b + 1) * args.batch]
            opt.zero_grad(set_to_none=True)
            loss_fn(net(x_train[idx]), y_train[idx]).backward()
            opt.step()
            if sched is not None:
                sched.step()
            steps += 1
            if steps % eval_every == 0:
                stop = tr.evaluate(net, x_test, y_test, steps, steps / per_epoch)
                tr.note_cpu(time.process_time() - c0)
                if stop:
                    break
        epoch += 1
    return tr.result(steps, steps / per_epoch)


def ddp_worker(rank: int, args, data, t_launch: float, queue) -> None:
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(args.port)
    dist.init_process_group("gloo", rank=rank, world_size=args.ranks)
    x_train, y_train, x_test, y_test = data
    net = make_model(args.layers, args.seed)
    ddp = torch.nn.parallel.DistributedDataParallel(net)
    opt = torch.optim.SGD(ddp.parameters(), lr=args.lr, momentum=args.momentum)
    loss_fn = torch.nn.CrossEntropyLoss()
    sampler = torch.utils.data.distributed.DistributedSampler(
        range(x_train.shape[0]), num_replicas=args.ranks, rank=rank, shuffle=True,
        seed=args.seed, drop_last=False)
    shard = len(sampler)
    per_epoch = math.ceil(shard / args.batch)
    eval_every = max(1, round(per_epoch / args.evals_per_epoch))
    sched = make_schedule(opt, args, per_epoch)
    flag = torch.zeros(2, dtype=torch.float64)  # [stop (rank 0 sets it), CPU seconds (summed)]
    dist.barrier()
    tr = Tracker(args.target, args.max_s) if rank == 0 else None
    c0 = time.process_time()
    startup_s = time.monotonic() - t_launch
    steps, epoch, stop = 0, 0, False
    while not stop:
        sampler.set_epoch(epoch)
        order = torch.tensor(list(iter(sampler)), dtype=torch.int64)
        for b in range(per_epoch):
            idx = order[b * args.batch:(b + 1) * args.batch]
            opt.zero_grad(set_to_none=True)
            loss_fn(ddp(x_train[idx]), y_train[idx]).backward()
            opt.step()
            if sched is not None:
                sched.step()
            steps += 1
            if steps % eval_every == 0:
                flag[0] = float(tr.evaluate(net, x_test, y_test, steps, steps / per_epoch)) if rank == 0 else 0.0
                flag[1] = time.process_time() - c0
                dist.all_reduce(flag)
                if rank == 0:
                    tr.note_cpu(flag[1].item())
                if flag[0] > 0:
                    stop = True
                    break
        epoch += 1
    if rank == 0:
        out = tr.result(steps, steps / per_epoch)
        out["startup_s"] = round(startup_s, 3)
        out["rows_per_step"] = args.batch * args.ranks
        queue.put(out)
    dist.barrier()
    dist.destroy_process_group()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["single", "ddp"], default="single")
    ap.add_argument("--ranks", type=int, default=8, help="ddp world size (default 8)")
    ap.add_argument("--target", type=float, default=0.88)
    ap.add_argument("--max-s", type=float, default=300.0, help="training wall-clock cap (s)")
    ap.add_argument("--layers", default="784,256,128,10")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--schedule", choices=["constant", "cosine"], default="constant")
    ap.add_argument("--epochs", type=float, default=40.0,
                    help="cosine horizon, in epochs of each process's own data (default 40)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--evals-per-epoch", type=int, default=4)
    ap.add_argument("--data-dir", default=DATA_DIR)
    ap.add_argument("--port", type=int, default=0, help="ddp rendezvous port (0: a free one)")
    ap.add_argument("--no-curve", action="store_true", help="leave the evaluation curve out of the JSON")
    args = ap.parse_args()
    args.layers = [int(v) for v in args.layers.split(",")]

    t_launch = time.monotonic()
    load0 = os.getloadavg()
    torch.set_num_threads(1)
    data = load(args.data_dir)
    load_s = time.monotonic() - t_launch
    print(f"torch {torch.__version__} {args.mode}: data loaded in {load_s:.1f}s "
          f"({data[0].shape[0]} train, {data[2].shape[0]} test rows)", file=sys.stderr, flush=True)

    if args.mode == "single":
        t_start = time.monotonic()
        out = run_single(args, data)
        out["startup_s"] = round(t_start - t_launch, 3)
        out["rows_per_step"] = args.batch
    else:
        if args.port == 0:
            import socket
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                args.port = s.getsockname()[1]
        for t in data:
            t.share_memory_()  # one copy of the data for all ranks
        ctx = mp.get_context("spawn")
        queue = ctx.SimpleQueue()
        procs = mp.start_processes(ddp_worker, args=(args, data, t_launch, queue),
                                   nprocs=args.ranks, join=False, start_method="spawn")
        out = queue.get()  # before join: a big result must not block rank 0 on the pipe
        while not procs.join():
            pass

    out.update({"mode": args.mode, "ranks": args.ranks if args.mode == "ddp" else 1,
                "threads_per_process": 1, "torch": torch.__version__, "batch": args.batch,
                "lr": args.lr, "momentum": args.momentum, "layers": args.layers,
                "schedule": args.schedule, "schedule_epochs": args.epochs if args.schedule == "cosine" else None,
                "load_s": round(load_s, 3), "max_s": args.max_s,
                "loadavg_start": [round(v, 2) for v in load0],
                "loadavg_end": [round(v, 2) for v in os.getloadavg()], "cpus": os.cpu_count()})
    if args.no_curve:
        out.pop("curve", None)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
