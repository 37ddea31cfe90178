"""Execute the notebooks of notebooks/ in paper mode (QUICK off) with papermill.

Figures go to figures/, results to results/; executed copies (with outputs) go to a temporary
folder so the committed notebooks stay stripped. Runs are guarded (tools/notebook_exec.py): a
per-cell time limit, bounded waits for the kernel's replies, and a stalled run is retried with
a fresh kernel; each notebook's line says so. A notebook whose data set is missing (it stops
with lifsg.data.DataError, e.g. Oxford Flowers) is reported as skipped.

Usage: python tools/run_notebooks.py [--cell-timeout S] [--attempts N] [NAME ...]
(NAME: a notebook's stem or its two-digit number; default: all).
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

import papermill
from notebook_exec import ATTEMPTS, CELL_TIMEOUT_S, run_notebook

REPO = Path(__file__).resolve().parents[1]


def build_parser():
    parser = argparse.ArgumentParser(prog="python tools/run_notebooks.py", description=__doc__)
    parser.add_argument("names", nargs="*", help="notebook stems or numbers (default: all)")
    parser.add_argument(
        "--cell-timeout",
        type=int,
        default=CELL_TIMEOUT_S,
        help="seconds per cell (default %(default)s; 0: no limit, e.g. for RETRAIN runs)",
    )
    parser.add_argument(
        "--attempts", type=int, default=ATTEMPTS, help="runs per notebook when runs stall"
    )
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    notebooks = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if args.names:
        notebooks = [p for p in notebooks if p.stem in args.names or p.stem[:2] in args.names]
        if not notebooks:
            raise SystemExit(f"no notebook matches {args.names}")
    out_dir = Path(tempfile.mkdtemp(prefix="lifsg-executed-"))
    os.environ["LIFSG_QUICK"] = "0"
    skipped, stalled = [], 0
    for path in notebooks:
        try:
            report = run_notebook(
                path,
                out_dir / path.name,
                {"QUICK": False},
                cell_timeout=args.cell_timeout,
                attempts=args.attempts,
                log=lambda line: print(line, flush=True),
            )
        except papermill.PapermillExecutionError as err:
            if err.ename != "DataError":
                raise
            skipped.append(path.stem)  # its data set is not on this machine
            print(f"{path.name}: SKIPPED, {err.evalue}", flush=True)
            continue
        stalled += len(report.stalls)
        print(report, flush=True)
    print(f"executed notebooks with outputs: {out_dir}")
    print(f"stalled attempts (retried): {stalled}")
    if skipped:
        print(f"skipped for missing data: {', '.join(skipped)} (see README)")


if __name__ == "__main__":
    sys.exit(main())
