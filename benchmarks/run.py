"""lifsg benchmark suite: lifsg against snnTorch and Norse, MNIST training, memory.

    python benchmarks/run.py            # full run, sets up benchmarks/.venv-peers
    python benchmarks/run.py --smoke    # tiny sizes, seconds (CI)

Every timing runs in worker processes pinned to one core (``--cpu``, default 1) with one
thread each (TensorFlow intra/inter-op threads 1, ``torch.set_num_threads(1)``): a TensorFlow
worker (lifsg's own virtual environment) and a PyTorch worker (benchmarks/.venv-peers); the
multi-core task adds a TensorFlow worker with 2 threads on cores 0-1. This script only sends
them requests, one at a time, and interleaves the implementations: each round runs every
implementation once, in a rotated order, and the tables report the median over rounds.
Results go to results.json / results.csv / results.md / results.png in ``--out``.

The 1-minute load average is recorded at the start and end of every task (``load_avg`` in
each row). Before the first timing the script waits (up to ``--wait-load`` seconds) for the
load to fall to ``--max-load``; a timing task that ends above it (plus one for the 2-thread
worker) aborts the run and nothing is written. Memory does not depend on contention and is
not checked.

Tasks:
1. ``linear_lif``: input (batch 16, 500 steps, N) uniform in [0, 1) -> Linear(N, N) -> LIF,
   forward and backward of ``output.sum()``, N = 512, 1024, 2048; plus each framework's
   Linear-only floor.
2. ``spike_input``: the same with 0/1 spikes at 5 % density as input, whose gradient is
   computed too (as for a layer fed by a LIF layer): lifsg's event projection against the
   dense one and the Linear-only floor.
3. ``mnist_epoch``: the original configuration (``lifsg.studies.RunConfig()`` built by
   ``build_model``: Poisson 100 steps -> DenseLIF(128) -> LeakyReadout(10), batch 256, Adam,
   MSE) and the dense-only bound with the same encoder: the median training step
   (``train_on_batch``; "epoch" = step x 235) and whole ``fit`` epochs over the 60000
   training images; the Poisson encoder alone.
4. ``multicore``: training steps of the original, dense and hybrid MNIST configurations on
   2 threads against 1.
5. ``memory``: peak resident memory of forward + backward of one Linear + LIF layer (512
   neurons, batch 16) against the number of steps, one fresh process per point: once the
   input exists the worker notes its RSS and resets the kernel's peak-RSS mark (``VmHWM``, by
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
SPIKE_IMPLS = ["linear-only", "lifsg-dense", "lifsg-events", "lifsg"]
MNIST_IMPLS = ["dense-only", "lifsg", "lifsg-dense", "lifsg-loop"]
ENCODER_IMPLS = ["encoder", "encoder-uniform"]
EPOCH_STEPS = 235  # ceil(60000 / 256)
TIMING_TASKS = ("linear_lif", "spike_input", "mnist_epoch", "multicore")

FULL = {
    "sizes": [512, 1024, 2048],
    "steps": 500,
    "batch": 16,
    "repeats": 5,
    "slow_repeats": 2,
    "spike_sizes": [512, 1024, 2048],
    "spike_density": 0.05,
    "mnist_batch": 256,
    "mnist_repeats": 8,
    "epoch_images": 60000,
    "epoch_repeats": 3,
    "multicore_configs": {
        "original": ["dense-only", "lifsg"],
        "dense": ["lifsg"],
        "hybrid": ["lifsg"],
    },
    "multicore_repeats": 5,
    "memory_steps": [100, 1000, 2000, 5000, 10000],
    "memory_neurons": 512,
    "memory_impls": ["lifsg", "lifsg-chunked", "lifsg-loop", "snntorch", "norse-unbind"],
    "memory_max_steps": {"lifsg-loop": 2000},
    "torch_impls": TORCH_FAST + TORCH_SLOW,
}
SMOKE = {
    "sizes": [32],
    "steps": 20,
    "batch": 4,
    "repeats": 2,
    "slow_repeats": 1,
    "spike_sizes": [64],
    "spike_density": 0.05,
    "mnist_batch": 16,
    "mnist_repeats": 2,
    "epoch_images": 64,
    "epoch_repeats": 1,
    "multicore_configs": {"original": ["lifsg"]},
    "multicore_repeats": 1,
    "memory_steps": [20],
    "memory_neurons": 32,
    "memory_impls": ["lifsg", "lifsg-chunked", "snntorch"],
    "memory_max_steps": {},
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


def pin(cmd, cpus):
    """``cmd`` under ``taskset`` to the cores ``cpus`` (an int or a list; None: unpinned)."""
    cpus = [cpus] if isinstance(cpus, int) else cpus
    if cpus and shutil.which("taskset") and set(cpus) <= os.sched_getaffinity(0):
        return ["taskset", "-c", ",".join(map(str, cpus)), *cmd]
    return cmd


def load_avg():
    """The 1-, 5- and 15-minute load averages."""
    return [round(v, 2) for v in os.getloadavg()]


def wait_for_quiet(max_load, timeout):
    """Wait up to ``timeout`` seconds for the 1-minute load average to fall to ``max_load``."""
    t0 = time.perf_counter()
    while os.getloadavg()[0] > max_load and time.perf_counter() - t0 < timeout:
        time.sleep(5)
    log(f"load average {load_avg()} after {time.perf_counter() - t0:.0f} s of waiting")


class LoadTooHigh(RuntimeError):
    pass


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

    def __init__(self, python, script, cpu, env=None, args=()):
        self.proc = subprocess.Popen(
            pin([python, os.path.join(HERE, script), *args], cpu),
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


def interleave(plan, rounds, slow, slow_rounds, cmd="run"):
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
            reply = plan[key].ask(cmd=cmd, key=key)
            if "error" in reply:
                raise RuntimeError(f"{key}: {reply['error']}")
            times[key].append(reply)
    return times


def _phase_rows(task, size, impl, reps, base, **extra):
    """Rows per phase (forward, backward = total - forward where not measured, total)."""
    rows = []
    for phase in ("forward", "backward", "total"):
        if phase == "backward" and "backward" not in reps[0]:
            vals = [r["total"] - r["forward"] for r in reps]
            cpu = [r["total_cpu"] - r["forward_cpu"] for r in reps]
        else:
            vals = [r[phase] for r in reps]
            cpu = [r[f"{phase}_cpu"] for r in reps]
        rows.append(
            dict(
                base,
                task=task,
                size=size,
                impl=impl,
                phase=phase,
                median_s=statistics.median(vals),
                median_cpu_s=statistics.median(cpu),
                repeats=len(vals),
                **extra,
            )
        )
    return rows


def task_linear_lif(cfg, tf_worker, torch_worker, rows, base, task="linear_lif"):
    """Task 1 (``linear_lif``: uniform input, peers too) or 2 (``spike_input``: 0/1 input)."""
    spikes = task == "spike_input"
    sizes = cfg["spike_sizes"] if spikes else cfg["sizes"]
    extra = {"steps": cfg["steps"], "batch": cfg["batch"]}
    if spikes:
        extra["density"] = cfg["spike_density"]
    for size in sizes:
        plan, slow, setup = {}, set(), {}
        impls = [(tf_worker, i) for i in (SPIKE_IMPLS if spikes else TF_IMPLS)]
        if torch_worker is not None and not spikes:
            impls += [(torch_worker, i) for i in cfg["torch_impls"]]
        for worker, impl in impls:
            reply = worker.ask(cmd="setup", key=impl, impl=impl, task=task, size=size, **extra)
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
            rows.extend(_phase_rows(task, size, impl, reps, base, **extra))
            if impl == "norse-compile":
                rows.append(
                    dict(
                        base,
                        task=task,
                        size=size,
                        impl=impl,
                        phase="compile",
                        median_s=setup[impl]["first_s"],
                        median_cpu_s=None,
                        repeats=1,
                        **extra,
                    )
                )
            plan[impl].ask(cmd="free", key=impl)
        log(f"  {task} @ {size} done")
        if not spikes:
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
    """Training steps and fit epochs of the original configuration; the encoder alone."""
    plan, source, batch = {}, None, cfg["mnist_batch"]
    for impl in MNIST_IMPLS + ENCODER_IMPLS:
        key = f"mnist:{impl}"
        reply = tf_worker.ask(
            cmd="setup",
            key=key,
            impl=impl,
            task="mnist_epoch",
            config="original",
            batch=batch,
            epoch_images=0 if impl in ENCODER_IMPLS else cfg["epoch_images"],
        )
        if "error" in reply:
            raise RuntimeError(f"mnist {impl}: {reply['error']}")
        source = reply.get("data")
        plan[key] = tf_worker
        log(f"  mnist {impl}: ready")
    times = interleave(plan, cfg["mnist_repeats"], set(), 0)
    epochs = interleave(
        {k: w for k, w in plan.items() if k.split(":")[1] in MNIST_IMPLS},
        cfg["epoch_repeats"],
        set(),
        0,
        cmd="epoch",
    )
    extra = {"steps": 100, "batch": batch, "images": source}
    for key, reps in times.items():
        impl = key.split(":", 1)[1]
        if impl in ENCODER_IMPLS:
            step = statistics.median(r["forward"] for r in reps)
            step_cpu = statistics.median(r["forward_cpu"] for r in reps)
        else:
            step = statistics.median(r["step"] for r in reps)
            step_cpu = statistics.median(r["step_cpu"] for r in reps)
        row = dict(
            base,
            task="mnist_epoch",
            size=batch,
            impl=impl,
            median_s=step * EPOCH_STEPS,
            median_cpu_s=step_cpu * EPOCH_STEPS,
            step_median_s=step,
            step_median_cpu_s=step_cpu,
            repeats=len(reps),
            **extra,
        )
        if key in epochs:
            row["epoch_s"] = statistics.median(r["epoch"] for r in epochs[key])
            row["epoch_cpu_s"] = statistics.median(r["epoch_cpu"] for r in epochs[key])
            row["epoch_images"] = cfg["epoch_images"]
            row["epoch_repeats"] = len(epochs[key])
        rows.append(row)
        tf_worker.ask(cmd="free", key=key)


def task_multicore(cfg, tf_worker, tf2_worker, rows, base):
    """MNIST training steps on the 2-thread worker against the 1-thread one, interleaved."""
    for config, impls in cfg["multicore_configs"].items():
        plan = {}
        for impl, (threads, worker) in itertools.product(impls, ((1, tf_worker), (2, tf2_worker))):
            key = f"{threads}:{config}:{impl}"
            reply = worker.ask(
                cmd="setup",
                key=key,
                impl=impl,
                task="mnist_epoch",
                config=config,
                batch=cfg["mnist_batch"] if config == "original" else None,
            )
            if "error" in reply:
                raise RuntimeError(f"multicore {key}: {reply['error']}")
            plan[key] = worker
        times = interleave(plan, cfg["multicore_repeats"], set(), 0)
        for key, reps in times.items():
            threads, _, impl = key.split(":")
            rows.append(
                dict(
                    base,
                    task="multicore",
                    size=int(threads),
                    impl=f"{config}:{impl}",
                    step_median_s=statistics.median(r["step"] for r in reps),
                    step_median_cpu_s=statistics.median(r["step_cpu"] for r in reps),
                    median_s=statistics.median(r["step"] for r in reps),
                    repeats=len(reps),
                )
            )
            plan[key].ask(cmd="free", key=key)
        log(f"  multicore {config} done")


def task_memory(cfg, cpu, have_peers, rows, base):
    for steps, impl in itertools.product(cfg["memory_steps"], cfg["memory_impls"]):
        if steps > cfg["memory_max_steps"].get(impl, steps):
            continue
        if impl.startswith(("lifsg", "linear")):
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


def linear_table(rows, task="linear_lif"):
    """CPU-time medians per phase (ms); the wall-clock total beside them."""
    sizes = sorted({r["size"] for r in rows if r["task"] == task})
    impls = list(dict.fromkeys(r["impl"] for r in rows if r["task"] == task))
    lines = [
        "| impl | "
        + " | ".join(f"N={n}: fwd / bwd / total CPU (wall total), ms" for n in sizes)
        + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for impl in impls:
        cells = []
        for n in sizes:
            vals = [_get(rows, task=task, size=n, impl=impl, phase=p) for p in PHASES]
            if vals[2] is None:
                cells.append("-")
                continue
            txt = " / ".join(_fmt_ms(v["median_cpu_s"]) if v else "-" for v in vals)
            txt += f" ({_fmt_ms(vals[2]['median_s'])})"
            comp = _get(rows, task=task, size=n, impl=impl, phase="compile")
            if comp:
                txt += f", compile {comp['median_s']:.0f} s wall"
            cells.append(txt)
        lines.append(f"| {impl} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


PHASES = ("forward", "backward", "total")
PEERS_FASTEST = ("snntorch", "norse")


def _totals(rows, size, key, task="linear_lif"):
    return {
        r["impl"]: r[key]
        for r in rows
        if r["task"] == task and r["size"] == size and r["phase"] == "total"
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


def spike_ratio_table(rows):
    """The spike-fed layer: event projection against the dense one and the matmul floor."""
    sizes = sorted({r["size"] for r in rows if r["task"] == "spike_input"})
    lines = [
        "| N | lifsg-events / lifsg-dense (CPU) | lifsg-events / linear-only (CPU) |"
        " lifsg (auto) / lifsg-dense (CPU) | (wall: events / dense) |",
        "|---|---|---|---|---|",
    ]
    for n in sizes:
        cpu = _totals(rows, n, "median_cpu_s", "spike_input")
        wall = _totals(rows, n, "median_s", "spike_input")
        if not {"lifsg-events", "lifsg-dense", "linear-only", "lifsg"} <= set(cpu):
            continue
        lines.append(
            f"| {n} | {cpu['lifsg-events'] / cpu['lifsg-dense']:.2f}x |"
            f" {cpu['lifsg-events'] / cpu['linear-only']:.2f}x |"
            f" {cpu['lifsg'] / cpu['lifsg-dense']:.2f}x |"
            f" {wall['lifsg-events'] / wall['lifsg-dense']:.2f}x |"
        )
    return "\n".join(lines)


def mnist_table(rows):
    dense = _get(rows, task="mnist_epoch", impl="dense-only")
    lines = [
        "| impl | step CPU ms (wall) | / dense-only CPU (wall) | fit epoch CPU s (wall) |"
        " / dense-only CPU (wall) |",
        "|---|---|---|---|---|",
    ]
    for r in (r for r in rows if r["task"] == "mnist_epoch"):
        ratio, epoch, epoch_ratio = "-", "-", "-"
        if dense:
            ratio = (
                f"{r['step_median_cpu_s'] / dense['step_median_cpu_s']:.2f}x"
                f" ({r['step_median_s'] / dense['step_median_s']:.2f}x)"
            )
        if "epoch_s" in r:
            epoch = f"{r['epoch_cpu_s']:.1f} ({r['epoch_s']:.1f})"
            if dense and "epoch_s" in dense:
                epoch_ratio = (
                    f"{r['epoch_cpu_s'] / dense['epoch_cpu_s']:.2f}x"
                    f" ({r['epoch_s'] / dense['epoch_s']:.2f}x)"
                )
        lines.append(
            f"| {r['impl']} | {r['step_median_cpu_s'] * 1000:.1f}"
            f" ({r['step_median_s'] * 1000:.1f}) | {ratio} | {epoch} | {epoch_ratio} |"
        )
    return "\n".join(lines)


def multicore_table(rows):
    impls = list(dict.fromkeys(r["impl"] for r in rows if r["task"] == "multicore"))
    lines = [
        "| configuration:impl | 1 thread, ms (CPU ms) | 2 threads, ms (CPU ms) | speed-up (wall) |",
        "|---|---|---|---|",
    ]
    for impl in impls:
        one = _get(rows, task="multicore", impl=impl, size=1)
        two = _get(rows, task="multicore", impl=impl, size=2)
        if one is None or two is None:
            continue
        lines.append(
            f"| {impl} | {one['step_median_s'] * 1000:.1f} ({one['step_median_cpu_s'] * 1000:.1f})"
            f" | {two['step_median_s'] * 1000:.1f} ({two['step_median_cpu_s'] * 1000:.1f})"
            f" | {one['step_median_s'] / two['step_median_s']:.2f}x |"
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
    for peer in ("snntorch", "norse-unbind"):
        cells = []
        for t in steps:
            a = _get(rows, task="memory", size=t, impl="lifsg-chunked")
            b = _get(rows, task="memory", size=t, impl=peer)
            cells.append("-" if a is None or b is None else f"{a['peak_mib'] / b['peak_mib']:.2f}")
        lines.append(f"| lifsg-chunked / {peer} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_table(rows):
    """The 1-minute load average at the start and end of each task."""
    loads = {}
    for r in rows:
        if "load_avg" in r:
            loads.setdefault(r["task"], r["load_avg"])
    lines = ["| task | load average at start (1, 5, 15 min) | at end |", "|---|---|---|"]
    for task, load in loads.items():
        lines.append(f"| {task} | {load['start']} | {load['end']} |")
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
        "Load average per task (the rows of results.json carry it too):",
        "",
        load_table(rows),
        "",
        "## Task 1: Linear + LIF, batch "
        f"{meta['cfg']['batch']}, {meta['cfg']['steps']} steps (median of "
        f"{meta['cfg']['repeats']} interleaved rounds; tutorial styles "
        f"{meta['cfg']['slow_repeats']}). Times are the CPU time of the single-threaded worker"
        " process (wall clock in parentheses).",
        "",
        linear_table(rows),
        "",
        ratio_table(rows),
        "",
        f"## Task 2: a layer fed by spikes ({meta['cfg']['spike_density']:.0%} density, input"
        " gradient computed)",
        "",
        linear_table(rows, "spike_input"),
        "",
        spike_ratio_table(rows),
        "",
        "## Task 3: MNIST, original configuration: training step, fit epoch, encoder alone",
        "",
        mnist_table(rows),
        "",
        "## Task 4: MNIST training step, 2 threads against 1",
        "",
        multicore_table(rows),
        "",
        f"## Task 5: peak memory (MiB) of Linear + LIF, {meta['cfg']['memory_neurons']} neurons,"
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


def _timed(task, rows, max_load, fn, *args, extra_load=0.0):
    """Run a timing task; put the load averages at its start and end into its rows; raise
    LoadTooHigh where the 1-minute load at its end passed ``max_load + extra_load``."""
    start, first = load_avg(), len(rows)
    fn(*args)
    end = load_avg()
    for r in rows[first:]:
        r["load_avg"] = {"start": start, "end": end}
    log(f"  {task}: load average {start} -> {end}")
    if max_load is not None and end[0] > max_load + extra_load:
        raise LoadTooHigh(
            f"{task}: the 1-minute load average ended at {end[0]} > {max_load + extra_load}"
            " (--max-load): the machine was busy; no results written"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    parser.add_argument("--out", default=HERE, help="folder for results.* (default benchmarks/)")
    parser.add_argument("--cpu", type=int, default=1, help="core to pin workers to (-1: none)")
    parser.add_argument("--no-peers", action="store_true", help="lifsg only")
    parser.add_argument(
        "--no-setup", action="store_true", help="do not create the peers venv (use if present)"
    )
    parser.add_argument("--tasks", default="linear_lif,spike_input,mnist_epoch,multicore,memory")
    parser.add_argument(
        "--merge", action="store_true", help="keep the other tasks' rows of --out/results.json"
    )
    parser.add_argument("--sizes", help="comma-separated neuron counts for task 1 (override)")
    parser.add_argument("--repeats", type=int, help="rounds per measurement (override)")
    parser.add_argument(
        "--max-load",
        type=float,
        help="refuse results of a timing task that ends above this 1-minute load average"
        " (default 1.5, one busy worker plus half a core; none for --smoke; <0: no limit)",
    )
    parser.add_argument(
        "--wait-load", type=float, help="seconds to wait for --max-load first (default 180)"
    )
    args = parser.parse_args(argv)
    cfg = dict(SMOKE if args.smoke else FULL)
    if args.sizes:
        cfg["sizes"] = [int(n) for n in args.sizes.split(",")]
    if args.repeats:
        cfg["repeats"] = cfg["mnist_repeats"] = cfg["multicore_repeats"] = args.repeats
    max_load = args.max_load if args.max_load is not None else (None if args.smoke else 1.5)
    max_load = None if max_load is not None and max_load < 0 else max_load
    wait = args.wait_load if args.wait_load is not None else (0 if args.smoke else 180)
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
    torch_worker = tf2_worker = None
    versions = dict(tf_worker.versions)
    if have_peers and "linear_lif" in tasks:
        # one inductor compile thread: no pool of compile workers on the shared core
        torch_env = {"TORCHINDUCTOR_COMPILE_THREADS": "1"}
        torch_worker = Worker(PEERS_PYTHON, "worker_torch.py", cpu, torch_env)
        versions.update({k: v for k, v in torch_worker.versions.items() if k != "python"})
    cores = None if cpu is None else sorted({0, cpu} if os.cpu_count() > 1 else {cpu})
    if "multicore" in tasks:
        tf2_worker = Worker(sys.executable, "worker_tf.py", cores, env, ("--threads", "2"))
    pinned = f"pinned to core {cpu}" if cpu is not None else "not pinned"
    base = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu": f"{cpu_name()} ({os.cpu_count()} cores; workers {pinned}, 1 thread each;"
        f" the 2-thread worker on cores {cores})",
        "versions": versions,
    }
    rows = []
    if max_load is not None and any(t in TIMING_TASKS for t in tasks):
        wait_for_quiet(max_load, wait)
    try:
        if "linear_lif" in tasks:
            log("task 1: linear_lif")
            _timed(
                "linear_lif",
                rows,
                max_load,
                task_linear_lif,
                cfg,
                tf_worker,
                torch_worker,
                rows,
                base,
            )
        if "spike_input" in tasks:
            log("task 2: spike_input")
            _timed(
                "spike_input",
                rows,
                max_load,
                task_linear_lif,
                cfg,
                tf_worker,
                None,
                rows,
                base,
                "spike_input",
            )
        if "mnist_epoch" in tasks:
            log("task 3: mnist_epoch")
            _timed("mnist_epoch", rows, max_load, task_mnist, cfg, tf_worker, rows, base)
        if "multicore" in tasks:
            log("task 4: multicore")
            _timed(
                "multicore",
                rows,
                max_load,
                task_multicore,
                cfg,
                tf_worker,
                tf2_worker,
                rows,
                base,
                extra_load=1.0,
            )
    except LoadTooHigh as err:
        log(str(err))
        raise SystemExit(2) from None
    finally:
        for worker in (tf_worker, torch_worker, tf2_worker):
            if worker is not None:
                worker.close()
    if "memory" in tasks:
        log("task 5: memory")
        start = load_avg()
        first = len(rows)
        task_memory(cfg, cpu, have_peers, rows, base)
        for r in rows[first:]:
            r["load_avg"] = {"start": start, "end": load_avg()}
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
