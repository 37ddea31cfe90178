"""MkDocs hook: every public name of lifsg has a docstring, else the (strict) build fails.

Public: every module whose name does not start with ``_``; in it, the functions and classes of
``__all__`` where the module defines one, else those whose names do not start with ``_``; in a
public class, its methods and properties not starting with ``_``, except those that override
a documented method of a base class in lifsg or implement the Keras layer API (their meaning is
the base's). Read with griffe from the source, without importing lifsg.
"""

from pathlib import Path

import griffe
from mkdocs.plugins import get_plugin_logger

log = get_plugin_logger("lifsg-docstrings")

KERAS_API = {
    "build",
    "call",
    "compute_output_shape",
    "compute_output_spec",
    "from_config",
    "get_config",
    "load_own_variables",
    "save_own_variables",
}


def _modules(module):
    yield module
    for sub in module.modules.values():
        if not sub.name.startswith("_") and not sub.is_alias:
            yield from _modules(sub)


def _inherits_doc(cls, name):
    try:
        bases = cls.mro()
    except Exception:  # noqa: BLE001 - a base outside lifsg cannot be resolved: no docstring
        return False
    return any(name in base.members and base.members[name].docstring for base in bases)


def _public(module):
    for name, obj in module.members.items():
        if obj.is_alias or name.startswith("_") or not (obj.is_function or obj.is_class):
            continue
        if module.exports is None or name in module.exports:
            yield obj


def missing_docstrings(package="lifsg", search_path="."):
    """Paths (``lifsg.module.name``) of the public names of ``package`` without a docstring."""
    root = griffe.load(package, search_paths=[str(search_path)], resolve_aliases=False)
    missing = []
    for module in _modules(root):
        if not module.docstring:
            missing.append(module.path)
        for obj in _public(module):
            if not obj.docstring:
                missing.append(obj.path)
            if not obj.is_class:
                continue
            for name, member in obj.members.items():
                if name.startswith("_") or member.is_alias or not member.is_function:
                    continue
                if member.docstring or name in KERAS_API or _inherits_doc(obj, name):
                    continue
                missing.append(member.path)
    return missing


def on_pre_build(config):
    """Warn (an error in strict mode) about each public name without a docstring."""
    repo = Path(config.config_file_path).resolve().parent
    for path in missing_docstrings(search_path=repo):
        log.warning(f"public name without a docstring: {path}")
