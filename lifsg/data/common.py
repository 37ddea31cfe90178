"""Shared by the data loaders: the error type, atomic writes, progress messages."""

import os
import sys
import tempfile
from pathlib import Path


class DataError(ValueError):
    """Missing, truncated, corrupted or unverifiable data files."""


def atomic_write(target, write):
    """Call ``write(file)`` on a temp file next to ``target``, then rename it into place."""
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp_name, 0o644)  # mkstemp creates 0600
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def log(message):
    print(f"[lifsg.data] {message}", file=sys.stderr, flush=True)
