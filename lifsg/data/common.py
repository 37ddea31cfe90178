"""Shared by the data loaders: the error type, atomic writes, progress messages."""

import os
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path


class DataError(ValueError):
    """Missing, truncated, corrupted or unverifiable data files."""


#: What numpy, zipfile, gzip and tarfile raise for a file whose bytes are damaged (a flipped
#: byte in a deflate stream is a zlib.error; a zip header naming an unsupported version or
#: encryption is a NotImplementedError / RuntimeError). Loaders turn these into DataError.
UNREADABLE = (OSError, EOFError, ValueError, RuntimeError, zipfile.BadZipFile, zlib.error)


def atomic_write(target, write):
    """Call ``write(file)`` on a temp file next to ``target``, then rename it into place.

    On any failure (including an exception raised by ``write``) the temp file is removed and
    ``target`` is left as it was.
    """
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
    """Print a progress message of the loaders to stderr."""
    print(f"[lifsg.data] {message}", file=sys.stderr, flush=True)
