"""MkDocs hook: the math of the pages as MathML, converted at build time.

pymdownx.arithmatex (generic mode) marks ``$...$`` and ``$$...$$`` as
``<span class="arithmatex">\\(...\\)</span>`` and ``<div class="arithmatex">\\[...\\]</div>``;
this hook replaces them with MathML from latex2mathml, which browsers render natively: the
site needs no math JavaScript and no network. A formula that cannot be converted is a warning
(an error in strict mode).
"""

import html
import re

from latex2mathml.converter import convert
from mkdocs.plugins import get_plugin_logger

log = get_plugin_logger("lifsg-mathml")

MATH = re.compile(
    r'<span class="arithmatex">\\\((?P<inline>.*?)\\\)</span>'
    r'|<div class="arithmatex">\\\[(?P<block>.*?)\\\]</div>',
    re.S,
)


def on_page_content(text, page, config, files):
    """Replace the page's arithmatex formulas by MathML."""

    def mathml(match):
        inline = match["inline"] is not None
        tex = html.unescape(match["inline"] if inline else match["block"])
        try:
            return convert(tex.strip(), display="inline" if inline else "block")
        except Exception as e:  # noqa: BLE001 - reported with the page and the formula
            log.warning(f"{page.file.src_uri}: cannot convert ${tex}$ to MathML: {e}")
            return match[0]

    return MATH.sub(mathml, text)
