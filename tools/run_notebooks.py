"""Execute every notebook of notebooks/ in paper mode (QUICK off) with papermill.

Figures go to figures/, results to results/; executed copies (with outputs) go to a temporary
folder so the committed notebooks stay stripped. A notebook whose data set is missing (it
stops with lifsg.data.DataError, e.g. Oxford Flowers) is reported as skipped. Usage: python tools/run_notebooks.py [NAME ...]
"""

import os
import sys
import tempfile
import time
from pathlib import Path

import papermill

REPO = Path(__file__).resolve().parents[1]


def main(names):
    notebooks = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if names:
        notebooks = [p for p in notebooks if p.stem in names or p.stem[:2] in names]
    out_dir = Path(tempfile.mkdtemp(prefix="lifsg-executed-"))
    os.environ["LIFSG_QUICK"] = "0"
    skipped = []
    for path in notebooks:
        start = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(path),
                str(out_dir / path.name),
                parameters={"QUICK": False},
                cwd=str(path.parent),
                kernel_name="python3",
                progress_bar=False,
            )
        except papermill.PapermillExecutionError as err:
            if err.ename != "DataError":
                raise
            skipped.append(path.stem)  # its data set is not on this machine
            print(f"{path.name}: SKIPPED, {err.evalue}", flush=True)
            continue
        print(f"{path.name}: {time.perf_counter() - start:.0f} s", flush=True)
    print(f"executed notebooks with outputs: {out_dir}")
    if skipped:
        print(f"skipped for missing data: {', '.join(skipped)} (see README)")


if __name__ == "__main__":
    main(sys.argv[1:])
