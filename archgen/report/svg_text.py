"""Text put into an SVG: escaped, and never a character XML cannot hold."""

from __future__ import annotations

import re
from xml.sax.saxutils import escape, quoteattr

# Characters XML 1.0 cannot hold at all, even escaped (controls, surrogates, U+FFFE/U+FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _visible(text: object) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def xml_text(text: object) -> str:
    """``text`` escaped for an element's content; characters XML cannot hold are written ``\\xNN``."""
    return escape(_visible(text))


def xml_attr(text: object) -> str:
    """``text`` as a quoted attribute value, likewise."""
    return quoteattr(_visible(text))
