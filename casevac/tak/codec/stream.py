"""Reading a TAK stream: `StreamSplitter` cuts it (events back to back, XML declarations between them) into
events, `parse()` reads one with a hardened parser (defusedxml: no DTD, no entities, no external references)."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # nosec B405 - a type only; parsing goes through defusedxml

import defusedxml.ElementTree as SafeET

from casevac.tak.codec.vocabulary import MAX_EVENT_BYTES, CotError


class StreamSplitter:
    """Cuts a TAK XML stream into events. `feed(bytes)` returns the complete events received so far (bytes,
    without XML declarations); a partial event waits for the next feed. An event larger than
    MAX_EVENT_BYTES, or garbage without any `<event`, is dropped and counted in `dropped`."""

    def __init__(self, max_bytes: int = MAX_EVENT_BYTES):
        self.buffer = b""
        self.max_bytes = max_bytes
        self.dropped = 0

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        out = []
        while True:
            start = self.buffer.find(b"<event")
            if start < 0:
                # Keep a possible "<eve" split across reads; the rest (declarations, whitespace) is noise.
                keep = self.buffer[-6:]
                self.buffer = keep if b"<" in keep else b""
                return out
            if start:
                self.buffer = self.buffer[start:]
            end = _event_end(self.buffer)
            if end is None:
                if len(self.buffer) > self.max_bytes:
                    # Oversized or never closed: skip to the next event start (or what comes next).
                    self.dropped += 1
                    following = self.buffer.find(b"<event", 6)
                    self.buffer = self.buffer[following:] if following > 0 else b""
                    continue
                return out
            out.append(self.buffer[:end])
            self.buffer = self.buffer[end:]


def _event_end(buffer: bytes) -> int | None:
    # "<" never appears inside an attribute value, so the first ">" closes the start tag.
    head_end = buffer.find(b">")
    if head_end < 0:
        return None
    if buffer[head_end - 1 : head_end] == b"/":
        return head_end + 1
    close = buffer.find(b"</event>", head_end)
    return None if close < 0 else close + len(b"</event>")


def parse(data: bytes | str) -> ET.Element:
    """One event, parsed without DTDs, entities or external references (CotError otherwise)."""
    if len(data) > MAX_EVENT_BYTES:
        raise CotError("event too large")
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except SafeET.ParseError as exc:
        raise CotError(f"not well-formed XML: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - defusedxml's DTDForbidden, EntitiesForbidden, ...
        raise CotError(f"refused XML: {type(exc).__name__}") from None
    if root.tag != "event":
        raise CotError(f"root element is <{root.tag}>, not <event>")
    return root
