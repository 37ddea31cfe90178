"""The kernel cache (lifsg.kernels): digests, rebuilds, atomic writes, compiler messages, and
``python -m lifsg.fused``.

Each test uses its own LIFSG_CACHE_DIR and a stand-in compiler (CXX) that copies the LIF library
the real compiler built for this session, so no test pays a 30 s compile. Libraries are only
loaded in child processes: a process can load the kernels once, and a bad library could kill it.
"""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from lifsg import fused, kernels, reference

if not fused.available():
    pytest.skip(f"fused kernel unavailable: {fused.unavailable_reason()}", allow_module_level=True)

GOOD = kernels.cached_library("lif")  # this session's library


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh cache directory and a stand-in compiler that logs each call."""
    directory = tmp_path / "cache"
    log = tmp_path / "compiler.log"
    compiler = tmp_path / "fake-cxx"
    compiler.write_text(
        f"#!{sys.executable}\n"
        "import shutil, sys\n"
        f"open({str(log)!r}, 'a').write('compiled\\n')\n"
        "args = sys.argv[1:]\n"
        f"shutil.copyfile({GOOD!r}, args[args.index('-o') + 1])\n"
    )
    compiler.chmod(0o755)
    monkeypatch.setenv("LIFSG_CACHE_DIR", str(directory))
    monkeypatch.setenv("CXX", str(compiler))

    class Cache:
        path = directory
        cxx = compiler

        @staticmethod
        def compiles():
            return len(log.read_text().splitlines()) if log.exists() else 0

    return Cache


def _files(directory):
    return sorted(os.listdir(directory))


def _child(code, env_extra=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )


def test_a_fresh_cache_compiles_once_and_stores_a_digest(cache):
    path = kernels.cached_library("lif")
    assert cache.compiles() == 1
    assert os.path.dirname(path) == str(cache.path)
    assert _files(cache.path) == sorted(
        [os.path.basename(path), os.path.basename(path) + ".sha256"]
    )
    assert open(path + ".sha256").read().strip() == kernels.sha256(GOOD)
    assert kernels.cached_library("lif") == path and cache.compiles() == 1  # verified: no recompile


@pytest.mark.parametrize("damage", ["half", "stub", "no-digest", "wrong-digest"])
def test_a_damaged_library_is_rebuilt(cache, damage):
    path = kernels.cached_library("lif")
    if damage in ("half", "stub"):
        size = os.path.getsize(path) // 2 if damage == "half" else 100
        os.truncate(path, size)
    elif damage == "no-digest":
        os.remove(path + ".sha256")
    else:
        with open(path + ".sha256", "w") as f:
            f.write("0" * 64)
    assert kernels.cached_library("lif") == path
    assert cache.compiles() == 2
    assert kernels.sha256(path) == kernels.sha256(GOOD) == open(path + ".sha256").read().strip()
    assert len(_files(cache.path)) == 2  # no temporary files left behind


def test_rebuild_replaces_the_file_atomically(cache):
    path = kernels.cached_library("lif")
    inode = os.stat(path).st_ino
    with open(path, "rb") as held:  # a reader of the old file keeps a complete file
        kernels.cached_library("lif", rebuild=True)
        assert len(held.read()) == os.path.getsize(GOOD)
    assert cache.compiles() == 2 and os.stat(path).st_ino != inode


def test_the_cache_key_covers_the_kernel_source(monkeypatch):
    source = kernels.source("lif")
    assert 'REGISTER_OP("LifsgLifForward")' in source
    before = kernels.library_path("lif")
    monkeypatch.setattr(kernels, "source", lambda name: source + "\n// changed\n")
    assert kernels.library_path("lif") != before


def _failing_compiler(cache):
    cache.cxx.write_text(
        "#!/bin/sh\n"
        'echo "lif.cc:12:3: warning: unused variable" >&2\n'
        "echo \"lif.cc:40:7: error: 'Tensorr' was not declared in this scope\" >&2\n"
        "exit 1\n"
    )


def test_a_failed_build_warns_with_the_compilers_message(cache, monkeypatch):
    _failing_compiler(cache)
    monkeypatch.setattr(fused, "_module", None)  # as in a fresh process
    monkeypatch.setattr(fused, "_error", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not fused.available()
    (warning,) = [w for w in caught if "fused LIF kernel unavailable" in str(w.message)]
    assert "'Tensorr' was not declared" in str(warning.message)
    assert "exit status 1" in str(warning.message)
    assert "'Tensorr' was not declared" in fused.unavailable_reason()
    assert not os.path.exists(cache.path) or _files(cache.path) == []  # nothing half-written


def test_a_missing_compiler_is_named(cache, monkeypatch):
    monkeypatch.setenv("CXX", str(cache.path / "no-such-compiler"))
    with pytest.raises(RuntimeError, match="no-such-compiler"):
        kernels.cached_library("lif")


@pytest.mark.slow
def test_cli_and_loading_in_a_fresh_process(cache):
    """The issue's crash: a library truncated to half killed Python with SIGBUS on load. Now the
    CLI rebuilds it and loads it; --rebuild compiles again; a failed build exits 1."""
    path = kernels.cached_library("lif")
    os.truncate(path, os.path.getsize(path) // 2)
    run = _child("from lifsg.fused import main; raise SystemExit(main([]))")
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == path and cache.compiles() == 2
    run = _child(
        "import json, numpy as np, lifsg\n"
        "from lifsg import fused\n"
        "fused.main(['--rebuild'])\n"
        "y = lifsg.LIF(w_leak=0.1, implementation='fused')(np.full((1, 3, 1), 0.6, 'float32'))\n"
        "print(json.dumps(y.numpy().ravel().tolist()))"
    )
    assert run.returncode == 0, run.stderr[-2000:]
    spikes = reference.lif_forward(np.full((1, 3, 1), 0.6), 0.1).y
    assert json.loads(run.stdout.strip().splitlines()[-1]) == spikes.ravel().tolist()
    assert cache.compiles() == 3
    _failing_compiler(cache)
    run = _child("from lifsg.fused import main; raise SystemExit(main(['--rebuild']))")
    assert run.returncode == 1
    assert "'Tensorr' was not declared" in run.stderr
