"""A scripted ATAK client: a plain TCP socket speaking streaming CoT XML, as ATAK does to port 8087."""

from __future__ import annotations

import socket
import threading
import time
from datetime import datetime, timedelta, timezone

from casevac.tak.codec import reading, stream, vocabulary


class AtakClient:
    def __init__(self, port: int, *, uid: str = "ANDROID-e2e-0001", callsign: str = "BRAVO-2-6 MEDIC", tls=None):
        """`tls`: an ssl.SSLContext with the client certificate (TAK's 8089), or None for plain TCP (8087)."""
        self.port, self.uid, self.callsign, self.tls = port, uid, callsign, tls
        self.events: list[reading.Event] = []
        self.lock = threading.Lock()
        self.sock: socket.socket | None = None
        self.reader: threading.Thread | None = None

    def connect(self, timeout: float = 20) -> "AtakClient":
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
                if self.tls is not None:
                    self.sock = self.tls.wrap_socket(self.sock, server_hostname="127.0.0.1")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.sock.settimeout(None)
        self.reader = threading.Thread(target=self._read, args=(self.sock,), daemon=True)
        self.reader.start()
        self.send_sa()
        return self

    def _read(self, sock) -> None:
        splitter = stream.StreamSplitter()
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            for raw in splitter.feed(data):
                try:
                    event = reading.classify(stream.parse(raw))
                except vocabulary.CotError:
                    continue
                with self.lock:
                    self.events.append(event)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_sa(self, lat: float = 4.36, lon: float = 18.55) -> None:
        now = datetime.now(timezone.utc)
        self.send(
            (
                f'<event version="2.0" uid="{self.uid}" type="a-f-G-U-C" how="m-g" time="{vocabulary.cot_time(now)}" '
                f'start="{vocabulary.cot_time(now)}" stale="{vocabulary.cot_time(now + timedelta(minutes=5))}">'
                f'<point lat="{lat}" lon="{lon}" hae="350" ce="10" le="10"/><detail>'
                f'<takv os="34" version="4.10.0" device="SAMSUNG SM-G991B" platform="ATAK-CIV"/>'
                f'<contact callsign="{self.callsign}" endpoint="*:-1:stcp"/>'
                f'<__group name="Cyan" role="Medic"/><status battery="88"/></detail></event>'
            ).encode()
        )

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
            self.sock = None
        if self.reader is not None:
            self.reader.join(5)

    def seen(self, predicate) -> list[reading.Event]:
        with self.lock:
            return [e for e in self.events if predicate(e)]

    def wait_for(self, predicate, timeout: float = 30, what: str = "event") -> reading.Event:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.seen(predicate)
            if found:
                return found[-1]
            time.sleep(0.05)
        with self.lock:
            kinds = [(e.type, e.uid) for e in self.events[-15:]]
        raise AssertionError(f"no {what} within {timeout}s; last events: {kinds}")


def chat_id(event: reading.Event) -> str | None:
    chat = event.element.find("detail/__chat")
    return chat.get("messageId") if chat is not None else None


def medevac_event(uid: str, sender_uid: str, *, time: datetime | None = None) -> bytes:
    """The golden ATAK-CIV 9-line with a fresh uid, sent by `sender_uid`."""
    from pathlib import Path

    raw = (Path(__file__).parent / "golden" / "atak_civ.xml").read_bytes()
    raw = raw.replace(b"0b6c3f5e-5d0c-4b8e-9a51-2f2b1f6c9d11", uid.encode())
    raw = raw.replace(b"ANDROID-3f2c9a8e7d6b5a41", sender_uid.encode())
    now = time or datetime.now(timezone.utc)
    for old in (b"2026-11-28T09:20:11.123Z", b"2026-11-28T09:20:11.100Z"):
        raw = raw.replace(old, vocabulary.cot_time(now).encode())
    raw = raw.replace(b"2026-11-29T09:20:11.123Z", vocabulary.cot_time(now + timedelta(days=1)).encode())
    return raw.split(b"?>", 1)[1].strip()
