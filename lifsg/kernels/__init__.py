"""lifsg's C++ TensorFlow kernels: their sources (``<name>.cc`` here, package data) and the
cache of compiled libraries.

:func:`cached_library` compiles ``<name>.cc`` with the C++ compiler (``$CXX``, else g++ or c++)
and TensorFlow's headers (``tf.sysconfig``) into ``$LIFSG_CACHE_DIR`` (default
``~/.cache/lifsg``), keyed by the source, the flags, the TensorFlow and Python versions, the
platform and the CPU's features (the build uses ``-march=native``). Beside each library a
``.sha256`` file holds its digest: a library that does not match it (truncated, overwritten,
half-copied) is rebuilt, never loaded, and every write is an atomic rename, so a process that
has a library loaded never sees it change. A failed build raises RuntimeError with the
compiler's error lines.
"""

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from importlib import resources

# -ffp-contract=off: no fused multiply-adds, so float results match the keras.ops code's bit
# for bit; -fno-trapping-math lets the selects vectorise (it changes no value).
FLAGS = ("-shared", "-fPIC", "-O3", "-march=native", "-ffp-contract=off", "-fno-trapping-math")


def source(name):
    """The C++ source ``lifsg/kernels/<name>.cc``."""
    return resources.files(__name__).joinpath(f"{name}.cc").read_text()


def _cache_dir():
    return os.environ.get("LIFSG_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "lifsg"
    )


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return line
    except OSError:
        pass
    return platform.processor()


def library_path(name):
    """Where the library of ``name`` for this source, TensorFlow and machine is cached."""
    import tensorflow as tf

    parts = [source(name), " ".join(FLAGS), tf.__version__, sys.version, platform.platform()]
    key = "\0".join([*parts, _cpu_flags()])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return os.path.join(_cache_dir(), f"lifsg_{name}_{digest}.so")


def sha256(path):
    """Hex SHA-256 digest of a file."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _verified(path):
    try:
        with open(path + ".sha256") as f:
            expected = f.read().strip()
        return sha256(path) == expected
    except OSError:
        return False


def _write_atomic(path, text):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _compiler_message(proc):
    """The compiler's error lines (else its last lines), at most 20."""
    lines = (proc.stderr + proc.stdout).strip().splitlines()
    errors = [line for line in lines if "error" in line.lower()]
    return "\n".join(errors[:20] if errors else lines[-20:])


def _compile(name, path):
    import tensorflow as tf

    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        raise RuntimeError("no C++ compiler found (set CXX, or install g++)")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(path), prefix=".build-") as tmp:
        src, out = os.path.join(tmp, f"{name}.cc"), os.path.join(tmp, f"{name}.so")
        with open(src, "w") as f:
            f.write(source(name))
        cmd = [compiler, *FLAGS, "-o", out, src]
        cmd += tf.sysconfig.get_compile_flags() + tf.sysconfig.get_link_flags()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True)
        except OSError as err:
            raise RuntimeError(f"cannot run the C++ compiler {compiler!r}: {err}") from err
        if proc.returncode != 0 or not os.path.exists(out):
            raise RuntimeError(
                f"compiling lifsg/kernels/{name}.cc with {compiler} failed (exit status "
                f"{proc.returncode}):\n{_compiler_message(proc)}"
            )
        digest = sha256(out)
        # The library first, its digest second: a reader in between sees a mismatch and rebuilds.
        os.replace(out, path)
        _write_atomic(path + ".sha256", digest + "\n")


def cached_library(name, rebuild=False):
    """Path of the verified library of ``name``, compiled first where the cache has none that
    matches its digest, or where ``rebuild``. Raises RuntimeError where the build fails."""
    path = library_path(name)
    if rebuild or not _verified(path):
        _compile(name, path)
    return path
