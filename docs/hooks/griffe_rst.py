"""Griffe extension (mkdocs.yml): the reST roles of lifsg's docstrings as Markdown.

lifsg's docstrings are plain text with reST inline markup; mkdocstrings reads them as Markdown,
where double backquotes already are code but roles such as ``:func:`name``` are not. Once the
whole package is loaded, a ``:mod:``, ``:class:``, ``:func:`` or ``:meth:`` role becomes a
cross-reference when its target is a documented public object of lifsg that the reference
shows: a full path (``lifsg.neuron.lif_step``; the lazily exported ``lifsg.LIF`` points to
``lifsg.layers.LIF``), or a name seen from the docstring's class or module. A full lifsg path
that names nothing stays a link, so autorefs fails the strict build on it. Every other role
becomes code: ``:role:`~a.b``` shows `` `b` ``, ``:role:`a.b``` shows `` `a.b` ``.
"""

import ast
import re
from pathlib import Path

import griffe

ROLE = re.compile(r":(?P<role>[a-z]+):`(?P<tilde>~?)(?P<target>[^`]+)`")
LINKED = {"mod", "class", "func", "meth"}
INIT = Path(__file__).resolve().parents[2] / "lifsg" / "__init__.py"


def _lazy_exports():
    """``{"lifsg.LIF": "lifsg.layers.LIF", ...}`` from ``_EXPORTS`` of lifsg/__init__.py."""
    for node in ast.parse(INIT.read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_EXPORTS":
            exports = ast.literal_eval(node.value)
            return {f"lifsg.{name}": f"lifsg.{mod}.{name}" for name, mod in exports.items()}
    return {}


EXPORTS = _lazy_exports()


def _shown(obj):
    """True where the reference shows ``obj``: public, documented, its module listing it."""
    if not obj.docstring and not obj.is_module:
        return False
    while obj.parent is not None:
        parent = obj.parent
        if obj.name.startswith("_"):
            return False
        if parent.is_module and parent.exports is not None and not obj.is_module:
            if obj.name not in parent.exports:
                return False
        obj = parent
    return True


def _lookup(pkg, path):
    """The object at the full ``path`` inside ``pkg`` (aliases followed), or None."""
    if path != pkg.path and not path.startswith(f"{pkg.path}."):
        return None
    try:
        found = pkg if path == pkg.path else pkg[path[len(pkg.path) + 1 :]]
        return found.final_target if found.is_alias else found
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None


def _target(pkg, obj, target):
    """Full path to link ``target`` (as written in ``obj``'s docstring) to, or None."""
    if target.startswith("lifsg."):
        found = _lookup(pkg, EXPORTS.get(target, target))
        return found.path if found is not None else EXPORTS.get(target, target)
    scopes = [obj] if obj.is_class or obj.is_module else []
    scopes += [p for p in (obj.parent, getattr(obj.parent, "parent", None)) if p is not None]
    for scope in scopes:
        found = _lookup(pkg, f"{scope.path}.{target}")
        if found is not None and found.path.startswith("lifsg.") and _shown(found):
            return found.path
    return None


def _objects(obj):
    yield obj
    for member in obj.members.values():
        if not member.is_alias and (member.is_module or member.is_class or member.is_function):
            yield from _objects(member)


class RstRoles(griffe.Extension):
    """Rewrites reST roles in the docstrings of a package once griffe has loaded it."""

    def on_package(self, *, pkg, **kwargs):
        """Called by griffe after it loaded ``pkg`` (lifsg)."""
        for obj in _objects(pkg):
            if obj.docstring is None:
                continue

            def markdown(match, obj=obj):
                target = match["target"]
                shown = f"`{target.rsplit('.', 1)[-1]}`" if match["tilde"] else f"`{target}`"
                link = _target(pkg, obj, target) if match["role"] in LINKED else None
                return f"[{shown}][{link}]" if link else shown

            obj.docstring.value = ROLE.sub(markdown, obj.docstring.value)
