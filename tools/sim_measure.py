#!/usr/bin/python3
"""Runs one gossip-sim under /usr/bin/time -v and prints what docs/simulation.md
("At scale") tabulates: wall time, peak RSS, the most threads seen in
/proc/PID/status, exchanges, the averaged model's quality, the first sample's
time, and how many samples were on time (requested within 25% of their period
after the previous one) or flagged.

usage: tools/sim_measure.py GOSSIP_SIM --config FILE --peers N --out DIR [other gossip-sim args]
"""
import json
import os
import re
import subprocess
import sys
import threading
import time


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sim, args = sys.argv[1], sys.argv[2:]
    out = args[args.index("--out") + 1]
    config = json.loads(re.sub(r"^\s*//.*$", "", open(args[args.index("--config") + 1]).read(),
                               flags=re.M))
    period = config.get("sim", {}).get("sample_every_s", 2)
    timev = out + ".time"
    proc = subprocess.Popen(["/usr/bin/time", "-v", "-o", timev, sim] + args,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    most_threads = [0]

    def watch():
        child = None
        while proc.poll() is None:
            try:
                if child is None:
                    kids = open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()
                    child = kids[0] if kids else None
                if child:
                    for line in open(f"/proc/{child}/status"):
                        if line.startswith("Threads:"):
                            most_threads[0] = max(most_threads[0], int(line.split()[1]))
            except OSError:
                pass
            time.sleep(0.2)

    t = threading.Thread(target=watch)
    t.start()
    _, err = proc.communicate()
    t.join()
    tv = open(timev).read()
    rss_mb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", tv).group(1)) / 1024
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", tv).group(1)
    samples = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl"))]
    finals = [r for r in samples if r["type"] == "final"]
    final = finals[-1] if finals else {}  # none: the run was stopped hard
    samples = [r for r in samples if r["type"] == "sample"]
    times = [r.get("requested_s", r["t_s"]) for r in samples]
    on_time = flagged = late = 0
    for i, r in enumerate(samples):
        if "on_time" in r:  # the simulator judges (after this change)
            on_time += bool(r["on_time"])
            flagged += not r["on_time"]
        else:  # before: the gap from the previous sample against the period
            ok = (times[0] if i == 0 else times[i] - times[i - 1]) <= 1.25 * period
            on_time += ok
            late += not ok
    steps = [p["step"] for p in final.get("final_peers", []) if p.get("step") is not None]
    print(json.dumps({
        "exit": proc.returncode, "wall": wall, "peak_rss_mb": round(rss_mb),
        "threads_max": most_threads[0], "exchanges_ok": final.get("exchanges_ok"),
        "averaged_model_accuracy": final.get("averaged_model_accuracy"),
        "averaged_model_loss": final.get("averaged_model_loss"),
        "mean_test_loss": final.get("mean_test_loss"),
        "first_sample_t_s": times[0] if times else None,
        "first_sample_completed_s": samples[0].get("completed_s", samples[0]["t_s"])
        if samples else None,
        "samples": len(samples), "on_time": on_time, "flagged": flagged,
        "late_unflagged": late, "alive_min": min((r["alive"] for r in samples), default=None),
        "members_min": final.get("members_min"), "members_max": final.get("members_max"),
        "final_steps_min_max": [min(steps), max(steps)] if steps else None,
        "sampling_slowed": final.get("sampling_slowed"),
        "error": final.get("error")}))
    if proc.returncode != 0:
        sys.stderr.write(err.decode()[-2000:])


main()
