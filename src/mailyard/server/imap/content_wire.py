"""ENVELOPE, BODYSTRUCTURE and BODY kept rendered in the blob cache (pure).

Rendering an envelope again for every FETCH costs more than everything
else ``FETCH 1:* (… ENVELOPE)`` does, so the octets the encoder writes for
each of the three are cached too, beside the summary (content.py), under
their own blob kind (``WIRE_KINDS``), the first time a FETCH asks for the
item: ``0x01 · octets``. A value that does not render alike in every
session (8-bit strings, literals: ``encoder.check_rendered``) is cached as
``0x00``, and built from the summary each time. A blob of another form is
ignored: the handler (fetch.py) renders from the summary. The cache keeps
the first record of a uid and kind, so a new rendering must take new kind
numbers, not only a new first octet.
"""

from __future__ import annotations

from typing import Final

from mailyard.proto.imap.encoder import RenderedBody, RenderedEnvelope, check_rendered
from mailyard.proto.imap.fetchspec import FetchAttr, FetchItem
from mailyard.proto.imap.render import Values
from mailyard.proto.imap.responses import BodyStructureData, EnvelopeData, FetchData

__all__ = ["WIRE_KINDS", "render_wire", "rendered_item"]

_ENVELOPE: Final = FetchAttr.ENVELOPE
_BODYSTRUCTURE: Final = FetchAttr.BODYSTRUCTURE
# The blob-cache kinds of the rendered items (kind 1 is the summary).
WIRE_KINDS: Final[dict[FetchItem, int]] = {_ENVELOPE: 2, _BODYSTRUCTURE: 3, FetchAttr.BODY: 4}
_RENDERED: Final = b"\x01"
_NOT_RENDERED: Final = b"\x00"
# Stateless for what it renders here (utf8 stays off), so shared by threads.
_RENDERER: Final = Values()


def render_wire(value: FetchData) -> bytes:
    """The blob to cache for an ENVELOPE or BODY[STRUCTURE] value built from
    the summary (``content.content_items``)."""
    try:
        if isinstance(value, EnvelopeData):
            return _RENDERED + check_rendered(_RENDERER.envelope_value(value.envelope))
        if isinstance(value, BodyStructureData):
            wire = _RENDERER.body_value(value.body, value.extensible)
            return _RENDERED + check_rendered(wire)
    except ValueError:
        pass  # 8-bit, a literal, or not renderable at all: never kept rendered
    return _NOT_RENDERED


def rendered_item(item: FetchItem, blob: bytes) -> FetchData | None:
    """``item`` from its cached blob; None when it is to be built from the
    summary (not renderable once for all, another form, damaged)."""
    if blob[:1] != _RENDERED:
        return None
    try:
        if item is _ENVELOPE:
            return RenderedEnvelope(None, blob[1:])
        return RenderedBody(None, item is _BODYSTRUCTURE, blob[1:])
    except ValueError:
        return None
