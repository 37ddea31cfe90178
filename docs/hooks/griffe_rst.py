"""Griffe extension (mkdocs.yml): the reST roles of lifsg's docstrings as Markdown.

lifsg's docstrings are plain text with reST inline markup; mkdocstrings reads them as Markdown,
where double backquotes already are code but roles such as ``:func:`name``` are not. A
``:mod:``, ``:class:``, ``:func:`` or ``:meth:`` role whose target is a full lifsg path becomes
a cross-reference (autorefs: a target that does not exist fails the strict build); the names
that ``lifsg`` exports lazily (``lifsg.LIF``) point to their modules. Other roles become code:
``:role:`~a.b``` shows `` `b` ``, ``:role:`a.b``` shows `` `a.b` ``.
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


def _markdown(match):
    target = match["target"]
    shown = f"`{target.rsplit('.', 1)[-1]}`" if match["tilde"] else f"`{target}`"
    if match["role"] in LINKED and target.startswith("lifsg."):
        return f"[{shown}][{EXPORTS.get(target, target)}]"
    return shown


class RstRoles(griffe.Extension):
    """Rewrites reST roles in every docstring griffe reads."""

    def on_instance(self, *, obj, **kwargs):
        """Called by griffe for each object it loads."""
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_markdown, obj.docstring.value)
