"""lifsg benchmark suite: lifsg against snnTorch and Norse, MNIST epoch time, memory.

    python benchmarks/run.py            # full run (~15 min), sets up benchmarks/.venv-peers
    python benchmarks/run.py --smoke    # tiny sizes, seconds (CI)

Every measurement runs in worker processes pinned to one core (``--cpu``, default 1) with one
thread each (TensorFlow intra/inter-op threads 1, ``torch.set_num_threads(1)``): a TensorFlow
worker (lifsg's own virtual environment) and a PyTorch worker (benchmarks/.venv-peers). This
script only sends them requests, one at a time, and interleaves the implementations: each
round runs every implementation once, in a rotated order, and the tables report the median
over rounds. Results go to results.json / results.csv / results.md / results.png in ``--out``.

Tasks:
1. ``linear_lif``: input (batch 16, 500 steps, N) -> Linear(N, N) -> LIF, forward and
   backward of ``output.sum()``, N = 512, 1024, 2048; plus each framework's Linear-only floor.
2. ``mnist_epoch``: Poisson(100 steps) -> DenseLIF(128) -> LeakyReadout(10), batch 256, Adam,
   MSE; median training-step time x 235 steps (one epoch of 60000 images).
3. ``memory``: peak resident memory of forward + backward of one Linear + LIF layer (512
   neurons, batch 16) against the number of steps, one fresh process per point: after the
   imports the worker notes its RSS and resets the kernel's peak-RSS mark (``VmHWM``, by
   writing 5 to /proc/self/clear_refs), runs forward + backward twice, and reports the peak
   (``VmHWM``) minus that RSS. (``ru_maxrss`` cannot be reset: TensorFlow's import peak
   would hide the first few hundred MiB.)
"""

import argparse
import csv
import datetime
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PEERS_VENV = os.path.join(HERE, ".venv-peers")
PEERS_PYTHON = os.path.join(PEERS_VENV, "bin", "python")
PEER_PACKAGES = [
    ["torch==2.13.0"],  # the CPU build
    ["snntorch==1.0.0"],
    ["--no-deps", "norse==1.1.0"],  # its torchvision requirement would pull a CUDA torch
    ["nir", "nirtorch", "h5py"],
]
TF_IMPLS = ["linear-only", "lifsg", "lifsg-loop"]
TORCH_FAST = ["linear-only-torch", "snntorch", "norse-unbind", "norse-compile"]
TORCH_SLOW = ["snntorch-tutorial", "norse-tutorial"]
MNIST_IMPLS = ["dense-only", "lifsg", "lifsg-loop", "lifsg-sparse"]
EPOCH_STEPS = 235  # ceil(60000 / 256)

FULL = {
    "sizes": [512, 1024, 2048],
    "steps": 500,
    "batch": 16,
    "repeats": 5,
    "slow_repeats": 2,
    "mnist_steps": 100,
    "mnist_batch": 256,
    "mnist_repeats": 8,
    "memory_steps": [100, 500, 1000, 2000],
    "memory_neurons": 512,
    "memory_impls": ["lifsg", "lifsg-loop", "snntorch", "norse-unbind"],
    "torch_impls": TORCH_FAST + TORCH_SLOW,
}
SMOKE = {
    "sizes": [32],
    "steps": 20,
    "batch": 4,
    "repeats": 2,
    "slow_repeats": 1,
    "mnist_steps": 10,
    "mnist_batch": 16,
    "mnist_repeats": 2,
    "memory_steps": [20],
    "memory_neurons": 32,
    "memory_impls": ["lifsg", "snntorch"],
    "torch_impls": ["linear-only-torch", "snntorch", "norse-unbind"] + TORCH_SLOW,
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def pin(cmd, cpu):
    if cpu is not None and shutil.which("taskset") and cpu in os.sched_getaffinity(0):
        return ["taskset", "-c", str(cpu), *cmd]
    return cmd


def ensure_peers():
    """Create benchmarks/.venv-peers with torch (CPU), snnTorch and Norse if it is missing."""
    if os.path.exists(PEERS_PYTHON):
        return
    log(f"creating {PEERS_VENV} (torch CPU, snnTorch 1.0.0, Norse 1.1.0 without torchvision)")
    subprocess.run([sys.executable, "-m", "venv", PEERS_VENV], check=True)
    for args in PEER_PACKAGES:
        subprocess.run([PEERS_PYTHON, "-m", "pip", "install", "-q", *args], check=True)


class Worker:
    """A worker process: one JSON request per line in, one JSON reply per line out."""

    def __init__(self, python, script, cpu, env=None):
        self.proc = subprocess.Popen(
            pin([python, os.path.join(HERE, script)], cpu),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
        )
        hello = self._read()
        self.versions = hello["versions"]

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.proc.args} died (exit {self.proc.poll()})")
        return json.loads(line)

    def ask(self, **req):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        try:
            self.ask(cmd="quit")
        except (RuntimeError, BrokenPipeError, json.JSONDecodeError):
            pass
        self.proc.wait(timeout=60)


def interleave(plan, rounds, slow, slow_rounds):
    """Run ``rounds`` rounds; each runs every key once, the order rotated per round.

    plan: {key: worker}. Keys in ``slow`` only run in the first ``slow_rounds`` rounds.
    Returns {key: [reply, ...]}.
    """
    keys = list(plan)
    times = {k: [] for k in keys}
    for r in range(rounds):
        shift = r % len(keys)
        for key in keys[shift:] + keys[:shift]:
            if key in slow and r >= slow_rounds:
                continue
            reply = plan[key].ask(cmd="run", key=key)
            if "error" in reply:
                raise RuntimeError(f"{key}: {reply['error']}")
            times[key].append(reply)
    return times


def task_linear_lif(cfg, tf_worker, torch_worker, rows, base):
    for size in cfg["sizes"]:
        plan, slow, setup = {}, set(), {}
        impls = [(tf_worker, i) for i in TF_IMPLS]
        if torch_worker is not None:
            impls += [(torch_worker, i) for i in cfg["torch_impls"]]
        for worker, impl in impls:
            reply = worker.ask(
                cmd="setup",
                key=impl,
                impl=impl,
                task="linear_lif",
                size=size,
                steps=cfg["steps"],
                batch=cfg["batch"],
            )
            if "error" in reply:
                log(f"  {impl} @ {size}: setup failed: {reply['error']}")
                continue
            plan[impl] = worker
            setup[impl] = reply
            if impl in TORCH_SLOW:
                slow.add(impl)
            log(f"  {impl} @ {size}: ready (first call {reply['first_s']:.2f} s)")
        times = interleave(plan, cfg["repeats"], slow, cfg["slow_repeats"])
        for impl, reps in times.items():
            for phase in ("forward", "backward", "total"):
                if phase == "backward" and "backward" not in reps[0]:
                    # TF: (forward + backward) - forward, from two calls
                    vals = [r["total"] - r["forward"] for r in reps]
                    cpu = [r["total_cpu"] - r["forward_cpu"] for r in reps]
                else:
                    vals = [r[phase] for r in reps]
                    cpu = [r[f"{phase}_cpu"] for r in reps]
                rows.append(
                    dict(
                        base,
                        task="linear_lif",
                        size=size,
                        impl=impl,
                        phase=phase,
                        median_s=statistics.median(vals),
                        median_cpu_s=statistics.median(cpu),
                        repeats=len(vals),
                        steps=cfg["steps"],
                        batch=cfg["batch"],
                    )
                )
            if impl == "norse-compile":
                rows.append(
                    dict(
                        base,
                        task="linear_lif",
                        size=size,
                        impl=impl,
                        phase="compile",
                        median_s=setup[impl]["first_s"],
                        median_cpu_s=None,
                        repeats=1,
                        steps=cfg["steps"],
                        batch=cfg["batch"],
                    )
                )
            plan[impl].ask(cmd="free", key=impl)
        log(f"  linear_lif @ {size} done")
        _add_fastest_norse(rows, size)


def _add_fastest_norse(rows, size):
    """Row 'norse': Norse's fastest configuration (by CPU total) among unbind / compile."""
    cands = [
        r
        for r in rows
        if r["task"] == "linear_lif"
        and r["size"] == size
        and r["impl"] in ("norse-unbind", "norse-compile")
    ]
    totals = {r["impl"]: r["median_cpu_s"] for r in cands if r["phase"] == "total"}
    if not totals:
        return
    best = min(totals, key=totals.get)
    for r in cands:
        if r["impl"] == best and r["phase"] != "compile":
            rows.append(dict(r, impl="norse", config=best))


def task_mnist(cfg, tf_worker, rows, base):
    plan = {}
    source = None
    for impl in MNIST_IMPLS:
        key = f"mnist:{impl}"
        reply = tf_worker.ask(
            cmd="setup",
            key=key,
            impl=impl,
            task="mnist_epoch",
            size=cfg["mnist_steps"],
            steps=cfg["mnist_steps"],
            batch=cfg["mnist_batch"],
        )
        if "error" in reply:
            raise RuntimeError(f"mnist {impl}: {reply['error']}")
        source = reply.get("data")
        plan[key] = tf_worker
        log(f"  mnist {impl}: ready")
    times = interleave(plan, cfg["mnist_repeats"], set(), 0)
    for key, reps in times.items():
        step = statistics.median(r["step"] for r in reps)
        step_cpu = statistics.median(r["step_cpu"] for r in reps)
        rows.append(
            dict(
                base,
                task="mnist_epoch",
                size=cfg["mnist_batch"],
                impl=key.split(":", 1)[1],
                median_s=step * EPOCH_STEPS,
                median_cpu_s=step_cpu * EPOCH_STEPS,
                step_median_s=step,
                step_median_cpu_s=step_cpu,
                repeats=len(reps),
                steps=cfg["mnist_steps"],
                batch=cfg["mnist_batch"],
                images=source,
            )
        )
        tf_worker.ask(cmd="free", key=key)


def task_memory(cfg, cpu, have_peers, rows, base):
    for steps, impl in itertools.product(cfg["memory_steps"], cfg["memory_impls"]):
        if impl in TF_IMPLS:
            python, script = sys.executable, "worker_tf.py"
        elif have_peers:
            python, script = PEERS_PYTHON, "worker_torch.py"
        else:
            continue
        args = [impl, str(steps), str(cfg["memory_neurons"]), str(cfg["batch"])]
        proc = subprocess.run(
            pin([python, os.path.join(HERE, script), "--memory", *args], cpu),
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if proc.returncode != 0:
            log(f"  memory {impl} @ {steps}: failed\n{proc.stderr[-1000:]}")
            continue
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(
            dict(
                base,
                task="memory",
                size=steps,
                impl=impl,
                peak_mib=out["peak_mib"],
                baseline_mib=out["baseline_mib"],
                neurons=cfg["memory_neurons"],
                batch=cfg["batch"],
            )
        )
        log(f"  memory {impl} @ {steps} steps: {out['peak_mib']:.0f} MiB")


# ---------------------------------------------------------------------------- reports


def _get(rows, **match):
    for r in rows:
        if all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def _fmt_ms(s):
    return "" if s is None else f"{s * 1000:.1f}"


def linear_table(rows):
    """CPU-time medians per phase (ms); the wall-clock total beside them."""
    sizes = sorted({r["size"] for r in rows if r["task"] == "linear_lif"})
    impls = list(dict.fromkeys(r["impl"] for r in rows if r["task"] == "linear_lif"))
    lines = [
        "| impl | "
        + " | ".join(f"N={n}: fwd / bwd / total CPU (wall total), ms" for n in sizes)
        + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for impl in impls:
        cells = []
        for n in sizes:
            vals = [_get(rows, task="linear_lif", size=n, impl=impl, phase=p) for p in PHASES]
            if vals[2] is None:
                cells.append("-")
                continue
            txt = " / ".join(_fmt_ms(v["median_cpu_s"]) if v else "-" for v in vals)
            txt += f" ({_fmt_ms(vals[2]['median_s'])})"
            comp = _get(rows, task="linear_lif", size=n, impl=impl, phase="compile")
            if comp:
                txt += f", compile {comp['median_s']:.0f} s wall"
            cells.append(txt)
        lines.append(f"| {impl} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


PHASES = ("forward", "backward", "total")
PEERS_FASTEST = ("snntorch", "norse")


def _totals(rows, size, key):
    return {
        r["impl"]: r[key]
        for r in rows
        if r["task"] == "linear_lif" and r["size"] == size and r["phase"] == "total"
    }


def ratio_table(rows):
    """lifsg's total against TensorFlow's Linear-only floor and the fastest peer."""
    sizes = sorted({r["size"] for r in rows if r["task"] == "linear_lif"})
    lines = [
        "| N | lifsg total CPU ms | / floor (CPU) | / floor (wall) | fastest peer (CPU ms) |"
        " / fastest peer (CPU) | / fastest peer (wall) | lifsg-loop / floor (CPU) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in sizes:
        cpu, wall = _totals(rows, n, "median_cpu_s"), _totals(rows, n, "median_s")
        if "lifsg" not in cpu or "linear-only" not in cpu:
            continue
        peers = {k: v for k, v in cpu.items() if k in PEERS_FASTEST}
        if peers:
            best = min(peers, key=peers.get)
            peer_txt = f"{best} {cpu[best] * 1000:.1f}"
            r_cpu = f"{cpu['lifsg'] / cpu[best]:.2f}x"
            r_wall = f"{wall['lifsg'] / wall[best]:.2f}x"
        else:
            peer_txt, r_cpu, r_wall = "not run", "-", "-"
        loop = cpu.get("lifsg-loop")
        loop_txt = "-" if loop is None else f"{loop / cpu['linear-only']:.2f}x"
        lines.append(
            f"| {n} | {cpu['lifsg'] * 1000:.1f} | {cpu['lifsg'] / cpu['linear-only']:.2f}x |"
            f" {wall['lifsg'] / wall['linear-only']:.2f}x | {peer_txt} | {r_cpu} | {r_wall} |"
            f" {loop_txt} |"
        )
    return "\n".join(lines)


def mnist_table(rows):
    mrows = [r for r in rows if r["task"] == "mnist_epoch"]
    dense = _get(rows, task="mnist_epoch", impl="dense-only")
    lines = [
        "| impl | step CPU ms (wall) | epoch CPU s (wall), 235 steps | / dense-only CPU (wall) |",
        "|---|---|---|---|",
    ]
    for r in mrows:
        ratio = "-"
        if dense:
            ratio = (
                f"{r['median_cpu_s'] / dense['median_cpu_s']:.2f}x"
                f" ({r['median_s'] / dense['median_s']:.2f}x)"
            )
        lines.append(
            f"| {r['impl']} | {r['step_median_cpu_s'] * 1000:.1f}"
            f" ({r['step_median_s'] * 1000:.1f}) | {r['median_cpu_s']:.1f}"
            f" ({r['median_s']:.1f}) | {ratio} |"
        )
    return "\n".join(lines)


def memory_table(rows):
    mrows = [r for r in rows if r["task"] == "memory"]
    steps = sorted({r["size"] for r in mrows})
    impls = list(dict.fromkeys(r["impl"] for r in mrows))
    head = "| impl | " + " | ".join(f"T={t}" for t in steps) + " |"
    lines = [head, "|---|" + "---|" * len(steps)]
    for impl in impls:
        cells = []
        for t in steps:
            r = _get(rows, task="memory", size=t, impl=impl)
            cells.append("-" if r is None else f"{r['peak_mib']:.0f}")
        lines.append(f"| {impl} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_reports(rows, meta, out):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: json.dumps(v) if isinstance(v, dict) else v for k, v in r.items()})
    md = [
        f"# lifsg benchmark results ({meta['date']})",
        "",
        f"CPU: {meta['cpu']}. Versions: {json.dumps(meta['versions'])}.",
        "",
        "## Task 1: Linear + LIF, batch "
        f"{meta['cfg']['batch']}, {meta['cfg']['steps']} steps (median of "
        f"{meta['cfg']['repeats']} interleaved rounds; tutorial styles "
        f"{meta['cfg']['slow_repeats']}). Times are the CPU time of the single-threaded worker"
        " process (wall clock in parentheses; the core was shared with other jobs).",
        "",
        linear_table(rows),
        "",
        ratio_table(rows),
        "",
        "## Task 2: MNIST model, time per training epoch",
        "",
        mnist_table(rows),
        "",
        f"## Task 3: peak memory (MiB) of Linear + LIF, {meta['cfg']['memory_neurons']} neurons,"
        f" batch {meta['cfg']['batch']}, forward + backward",
        "",
        memory_table(rows),
        "",
    ]
    text = "\n".join(md)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(text)
    try:
        plot(rows, os.path.join(out, "results.png"))
    except Exception as err:  # noqa: BLE001  (the tables matter more than the picture)
        log(f"plot failed: {err}")
    return text


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    ax = axes[0]
    sizes = sorted({r["size"] for r in rows if r["task"] == "linear_lif"})
    impls = list(
        dict.fromkeys(r["impl"] for r in rows if r["task"] == "linear_lif" and r["impl"] != "norse")
    )
    for impl in impls:
        pts = [
            (n, r["median_cpu_s"] * 1000)
            for n in sizes
            if (r := _get(rows, task="linear_lif", size=n, impl=impl, phase="total"))
        ]
        if pts:
            style = "-o" if impl.startswith(("lifsg", "linear")) else "--s"
            ax.plot(*zip(*pts, strict=True), style, label=impl)
    ax.set(xscale="log", yscale="log", xlabel="neurons", ylabel="forward + backward, CPU ms")
    ax.minorticks_off()
    ax.set_title("Task 1: Linear + LIF, 500 steps, batch 16")
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.legend(fontsize=7)
    ax = axes[1]
    mrows = [r for r in rows if r["task"] == "mnist_epoch"]
    ax.bar([r["impl"] for r in mrows], [r["median_cpu_s"] for r in mrows], color="tab:blue")
    ax.set(ylabel="CPU s per epoch (235 steps)", title="Task 2: MNIST model, one epoch")
    ax = axes[2]
    mem = [r for r in rows if r["task"] == "memory"]
    for impl in dict.fromkeys(r["impl"] for r in mem):
        pts = sorted((r["size"], r["peak_mib"]) for r in mem if r["impl"] == impl)
        ax.plot(*zip(*pts, strict=True), "-o", label=impl)
    ax.set(xlabel="time steps", ylabel="peak RSS above the post-import RSS (MiB)")
    ax.set_title("Task 3: memory, Linear + LIF")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    parser.add_argument("--out", default=HERE, help="folder for results.* (default benchmarks/)")
    parser.add_argument("--cpu", type=int, default=1, help="core to pin workers to (-1: none)")
    parser.add_argument("--no-peers", action="store_true", help="lifsg only")
    parser.add_argument(
        "--no-setup", action="store_true", help="do not create the peers venv (use if present)"
    )
    parser.add_argument("--tasks", default="linear_lif,mnist_epoch,memory")
    parser.add_argument(
        "--merge", action="store_true", help="keep the other tasks' rows of --out/results.json"
    )
    parser.add_argument("--sizes", help="comma-separated neuron counts for task 1 (override)")
    parser.add_argument("--repeats", type=int, help="rounds per measurement (override)")
    args = parser.parse_args(argv)
    cfg = dict(SMOKE if args.smoke else FULL)
    if args.sizes:
        cfg["sizes"] = [int(n) for n in args.sizes.split(",")]
    if args.repeats:
        cfg["repeats"] = cfg["mnist_repeats"] = args.repeats
    cpu = None if args.cpu < 0 else args.cpu
    tasks = args.tasks.split(",")
    if not args.no_peers and not args.no_setup:
        ensure_peers()
    have_peers = not args.no_peers and os.path.exists(PEERS_PYTHON)
    if not args.no_peers and not have_peers:
        log(f"peers skipped: {PEERS_VENV} is absent (run without --no-setup to create it)")

    t_start = time.perf_counter()
    env = {"TF_CPP_MIN_LOG_LEVEL": "3"}
    t0 = time.perf_counter()
    tf_worker = Worker(sys.executable, "worker_tf.py", cpu, env)
    log(f"TensorFlow worker ready in {time.perf_counter() - t0:.0f} s: {tf_worker.versions}")
    torch_worker = None
    versions = dict(tf_worker.versions)
    if have_peers and "linear_lif" in tasks:
        # one inductor compile thread: no pool of compile workers on the shared core
        torch_env = {"TORCHINDUCTOR_COMPILE_THREADS": "1"}
        torch_worker = Worker(PEERS_PYTHON, "worker_torch.py", cpu, torch_env)
        versions.update({k: v for k, v in torch_worker.versions.items() if k != "python"})
    pinned = f"pinned to core {cpu}" if cpu is not None else "not pinned"
    base = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu": f"{cpu_name()} ({os.cpu_count()} cores; workers {pinned}, 1 thread each)",
        "versions": versions,
    }
    rows = []
    try:
        if "linear_lif" in tasks:
            log("task 1: linear_lif")
            task_linear_lif(cfg, tf_worker, torch_worker, rows, base)
        if "mnist_epoch" in tasks:
            log("task 2: mnist_epoch")
            task_mnist(cfg, tf_worker, rows, base)
    finally:
        tf_worker.close()
        if torch_worker is not None:
            torch_worker.close()
    if "memory" in tasks:
        log("task 3: memory")
        task_memory(cfg, cpu, have_peers, rows, base)
    if args.merge and os.path.exists(os.path.join(args.out, "results.json")):
        with open(os.path.join(args.out, "results.json")) as f:
            old = [r for r in json.load(f) if r["task"] not in tasks]
        rows = old + rows
    meta = {**base, "cfg": cfg}
    text = write_reports(rows, meta, args.out)
    print(text)
    log(f"benchmark finished in {time.perf_counter() - t_start:.0f} s; results in {args.out}")
    return rows


if __name__ == "__main__":
    main()
