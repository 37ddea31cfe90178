"""Command line for study plans.

    python -m lifsg.studies run PLAN [PLAN ...] [--workers N] [--only PATTERN ...]
                                [--distribution none|data-parallel|mirrored]
    python -m lifsg.studies status PLAN [PLAN ...]

``run`` starts N background workers (default 1) that train the plans' unfinished runs in
order, resuming interrupted ones, and returns at once; each worker logs one progress line per
epoch (accuracies, learning rate, seconds per epoch, ETA) to ``--log-dir`` (default
data/logs). ``--foreground`` works in this process instead. ``status`` prints one line per
run: done / running / partial (resumable) / pending, epoch, accuracies and ETA.
``--distribution`` trains each run data-parallel over all devices (one worker; see
:mod:`lifsg.studies.distribute` and the README's "Scaling out"); ``data-parallel`` on several
hosts: start ``run --foreground`` on each with the ``KERAS_DISTRIBUTION_*`` variables set.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from .distribute import parse as parse_distribution
from .plan import load_plan, run_state
from .runner import selected


def _threads(n):
    """Limit TensorFlow to ``n`` threads (must happen before TensorFlow runs anything)."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    except RuntimeError:
        print(f"note: TensorFlow already runs; --threads {n} not applied", file=sys.stderr)


def _fmt(value, spec):
    """``value`` formatted by ``spec``, or a right-aligned "-" of the same width if None."""
    return format(value, spec) if value is not None else "-".rjust(int(spec.split(".")[0]))


def status(plans, only=None, out=None):
    """Print one line per run and a summary per plan to ``out`` (default stdout); return the
    list of state dicts."""
    out = out or sys.stdout
    infos = []
    for plan in plans:
        print(f"{plan.study} ({plan.path}): {plan.description}", file=out)
        print(
            f"  {'run':28s} {'state':8s} {'epoch':>7s} {'val acc':>8s} {'test acc':>8s}"
            f" {'s/epoch':>8s} {'ETA min':>8s}",
            file=out,
        )
        left = 0.0
        for run in selected(plan, only):
            info = run_state(plan, run) | {"run": run.name, "study": plan.study}
            infos.append(info)
            eta = None
            if info["state"] != "done" and info["epoch_time_s"]:
                eta = (info["epochs"] - info["epoch"]) * info["epoch_time_s"] / 60
                left += eta
            print(
                f"  {run.name:28s} {info['state']:8s} {info['epoch']:>3d}/{info['epochs']:<3d}"
                f" {_fmt(info['val_accuracy'], '8.4f')} {_fmt(info['test_accuracy'], '8.4f')}"
                f" {_fmt(info['epoch_time_s'], '8.0f')} {_fmt(eta, '8.0f')}",
                file=out,
            )
        counts = {}
        for info in infos:
            if info["study"] == plan.study:
                counts[info["state"]] = counts.get(info["state"], 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in counts.items())
        print(f"  {summary}; known remaining time {left:.0f} min (one worker)", file=out)
    return infos


def start_workers(plan_paths, workers, only, threads, log_dir, distribution="none"):
    """Start ``workers`` detached worker processes; return [(pid, log path)]."""
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    started = []
    for i in range(workers):
        log = log_dir / f"studies-{stamp}-{i}.log"
        cmd = [sys.executable, "-m", "lifsg.studies", "run", "--foreground", *map(str, plan_paths)]
        cmd += ["--threads", str(threads), "--distribution", distribution]
        for pattern in only or ():
            cmd += ["--only", pattern]
        with open(log, "ab") as f:
            proc = subprocess.Popen(
                cmd,
                stdout=f,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        started.append((proc.pid, log))
        time.sleep(2)  # let it claim its first run before the next one looks
    return started


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m lifsg.studies",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train the unfinished runs in background workers")
    run.add_argument("plans", nargs="+", help="plan files (JSON)")
    run.add_argument("--workers", type=int, default=1, help="background workers (default 1)")
    run.add_argument(
        "--threads",
        type=int,
        default=0,
        help="TensorFlow threads per worker (default: cores / workers)",
    )
    run.add_argument("--only", action="append", help="shell pattern of run names (repeatable)")
    run.add_argument("--log-dir", default="data/logs", help="worker logs (default data/logs)")
    run.add_argument("--foreground", action="store_true", help="work in this process")
    run.add_argument(
        "--distribution",
        default="none",
        help="none (default), data-parallel (JAX backend) or mirrored (TensorFlow backend):"
        " train each run on all devices, batch_size being the global batch",
    )
    stat = commands.add_parser("status", help="print where each run stands")
    stat.add_argument("plans", nargs="+", help="plan files (JSON)")
    stat.add_argument("--only", action="append", help="shell pattern of run names")
    args = parser.parse_args(argv)
    try:
        plans = [load_plan(p) for p in args.plans]
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.command == "status":
        status(plans, args.only)
        return 0
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    try:
        distributed = parse_distribution(args.distribution) is not None
    except ValueError as err:
        parser.error(str(err))
    if distributed and args.workers > 1:
        parser.error("--distribution uses all devices for one run at a time: use --workers 1")
    if args.foreground:
        if args.threads:
            _threads(args.threads)
        from .runner import work

        done = work(plans, only=args.only, distribution=args.distribution)
        print(f"worker finished; completed {len(done)} run(s): {', '.join(done) or '-'}")
        return 0
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.workers)
    started = start_workers(
        args.plans, args.workers, args.only, threads, args.log_dir, args.distribution
    )
    for pid, log in started:
        print(f"worker {pid}: log {log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
