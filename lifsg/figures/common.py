"""Where a notebook writes, and saving a figure together with the data it plots."""

import csv
import math
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

PNG_DPI = 150
#: paper-mode folders, relative to notebooks/ (the working directory of every notebook run,
#: as for the notebooks' DATA_DIR): the repository's figures/ and results/
PAPER_FIG_DIR = "../figures"
PAPER_RESULTS_DIR = "../results"


def output_dirs(quick, fig_dir=None, results_dir=None):
    """``(fig_dir, results_dir)`` as Paths: where a notebook writes its figures and results.

    A folder given explicitly is used as given. ``None`` means: in paper mode (``quick``
    False) the repository's ``figures/`` and ``results/`` (``../figures``, ``../results``
    relative to notebooks/); in QUICK mode (``quick`` True) ``figures/`` and ``results/`` in
    a new temporary folder, so that a QUICK run never overwrites the committed figures and
    results unless asked to. The folders are not created here.
    """
    if not isinstance(quick, bool):
        raise TypeError(f"quick must be True or False, got {quick!r}")
    if quick and (fig_dir is None or results_dir is None):
        scratch = Path(tempfile.mkdtemp(prefix="lifsg-quick-"))
        defaults = (scratch / "figures", scratch / "results")
    else:
        defaults = (Path(PAPER_FIG_DIR), Path(PAPER_RESULTS_DIR))
    return tuple(
        default if given is None else Path(given)
        for given, default in zip((fig_dir, results_dir), defaults, strict=True)
    )


def _columns(data):
    """``(header, rows)`` from a dict of equal-length 1-D columns or a list of rows.

    Rows may be dicts (same keys, in order) or sequences whose first row is the header.
    """
    if isinstance(data, Mapping):
        header = [str(k) for k in data]
        cols = [np.asarray(v, dtype=object) for v in data.values()]
        for name, col in zip(header, cols, strict=True):
            if col.ndim != 1:
                raise ValueError(f"column {name!r} must be 1-D, got shape {col.shape}")
        lengths = {len(c) for c in cols}
        if len(lengths) > 1:
            sizes = {name: len(c) for name, c in zip(header, cols, strict=True)}
            raise ValueError(f"columns must have equal length, got {sizes}")
        return header, list(zip(*cols, strict=True))
    rows = list(data)
    if not rows:
        raise ValueError("data is empty")
    if isinstance(rows[0], Mapping):
        header = [str(k) for k in rows[0]]
        for row in rows:
            if [str(k) for k in row] != header:
                raise ValueError(f"row keys {list(row)} differ from the first row's {header}")
        return header, [tuple(row.values()) for row in rows]
    header, *body = rows
    header = [str(k) for k in header]
    for row in body:
        if len(row) != len(header):
            raise ValueError(f"row {row!r} has {len(row)} cells, the header {len(header)}")
    return header, [tuple(row) for row in body]


def _cell(value):
    """CSV text of one value: integers as integers, floats in full precision, nan / inf."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    return value


def save_figure(fig, data, fig_dir, stem):
    """Write ``stem.png`` (150 dpi), ``stem.pdf`` and ``stem.csv`` into ``fig_dir``.

    fig: a matplotlib Figure. data: what the figure plots, as a dict column -> 1-D sequence
    (equal lengths) or a list of rows (dicts, or sequences with the header first); ``nan`` and
    ``inf`` are written as such. fig_dir is created if missing. Returns the three paths.
    The files carry no creation date, so re-running gives the same PNG/CSV.
    """
    header, rows = _columns(data)
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    png, pdf, table = (fig_dir / f"{stem}.{ext}" for ext in ("png", "pdf", "csv"))
    fig.savefig(png, dpi=PNG_DPI, metadata={"Software": None})
    fig.savefig(pdf, metadata={"CreationDate": None, "ModDate": None, "Producer": None})
    with table.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([_cell(v) for v in row] for row in rows)
    return [png, pdf, table]
