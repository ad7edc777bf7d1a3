"""The connection loop: one TAK server (TAK_URL), one mission (TAK_MISSION), both ways, until stopped.

- tcp://host:port streams CoT XML (TAK's 8087); tls://host:port does the same inside TLS with the client
  certificate TAK_CERT / TAK_KEY, the server checked against TAK_CA (TAK's 8089).
- On every (re)connection: the gateway's own SA (so the server routes direct messages to it), then the
  current picture (active requests, assets, facilities), then every event-log entry after the last seq
  sent; each CoT written is built from the event alone (uid and time of the change, not of the send), and
  the seq is saved after each, so a gateway killed mid-stream re-sends at most one event, identical to what
  ATAK already has (same uid, same time: shown once).
- Connection lost or refused: reconnect after 1, 2, 4 ... seconds up to TAK_RECONNECT_MAX_SECONDS.
- Connected or not: in `tak_gateway_state` (shown by /readyz) and a health line in the log every minute.
"""

from __future__ import annotations

import logging
import select
import signal
import socket
import ssl
import time
from urllib.parse import urlsplit

from flask import Flask

from casevac.fleet import positions as fleet_positions
from casevac.tak import context, inbound, outbound
from casevac.tak.codec import stream, writing
from config.extensions import db
from core import clock
from realtime import relay

log = logging.getLogger("casevac.tak")

POSITION_POLL_SECONDS = 2.0
PRESENCE_SECONDS = 30.0
HEALTH_SECONDS = 60.0
TICK_SECONDS = 0.05


# Connecting, and each send: a TAK server that takes longer is taken for lost (the loop reconnects).
SOCKET_TIMEOUT_SECONDS = 10


class GatewayConfigError(RuntimeError):
    pass


def parse_url(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url or "")
    if parts.scheme not in ("tcp", "tls") or not parts.hostname:
        raise GatewayConfigError("TAK_URL must be tcp://host:port or tls://host:port (e.g. tcp://tak.example:8087)")
    return parts.scheme, parts.hostname, parts.port or (8089 if parts.scheme == "tls" else 8087)


class Gateway:
    def __init__(
        self,
        app: Flask,
        *,
        url: str,
        mission_code: str,
        cert: str = "",
        key: str = "",
        ca: str = "",
        uid: str = "",
        callsign: str = "",
        max_backoff: float = 30.0,
    ):
        self.app = app
        self.scheme, self.host, self.port = parse_url(url)
        if not mission_code:
            raise GatewayConfigError("TAK_MISSION must name the mission's code (e.g. DEMO)")
        if self.scheme == "tls" and not (cert and key):
            raise GatewayConfigError(
                "tls:// needs TAK_CERT and TAK_KEY (PEM client certificate and key) and usually TAK_CA"
            )
        self.server = f"{self.host}:{self.port}"
        self.mission_code, self.cert, self.key, self.ca = mission_code, cert, key, ca
        self.uid, self.callsign = uid, callsign
        self.max_backoff = max_backoff
        self.sock: socket.socket | None = None
        self.running = False
        self.ctx: context.Context | None = None
        self.cursor: int | None = None  # the last seq sent on this connection

    @classmethod
    def from_app(cls, app: Flask) -> "Gateway":
        s = app.extensions["settings"]
        return cls(
            app,
            url=s.TAK_URL,
            mission_code=s.TAK_MISSION,
            cert=s.TAK_CERT,
            key=s.TAK_KEY,
            ca=s.TAK_CA,
            uid=s.TAK_UID,
            callsign=s.TAK_CALLSIGN,
            max_backoff=s.TAK_RECONNECT_MAX_SECONDS,
        )

    # -- connection --------------------------------------------------------------------------------
    def connect(self) -> socket.socket:
        raw = socket.create_connection((self.host, self.port), timeout=SOCKET_TIMEOUT_SECONDS)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if self.scheme == "tls":
            tls = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca or None)
            tls.load_cert_chain(self.cert, self.key)
            # TAK servers' certificates name the server by whatever the CA wrote; the CA is ours to trust.
            tls.check_hostname = bool(self.ca) and not _is_ip(self.host)
            raw = tls.wrap_socket(raw, server_hostname=self.host)
        raw.settimeout(SOCKET_TIMEOUT_SECONDS)
        return raw

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)
        self.ctx.count("sent")

    # -- the loop ----------------------------------------------------------------------------------
    def run(self, once: bool = False) -> None:
        self.running = True
        if not once:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stop())
        with self.app.app_context():
            try:
                self.ctx = context.ensure_context(
                    db.session, mission_code=self.mission_code, uid=self.uid, callsign=self.callsign
                )
            except LookupError as exc:
                raise GatewayConfigError(f"TAK_MISSION={self.mission_code}: {exc}") from None
            context.state(db.session, self.ctx, self.server)
            log.info(
                "TAK gateway for %s as %s (%s) -> %s://%s",
                self.ctx.mission_code,
                self.ctx.callsign,
                self.ctx.uid,
                self.scheme,
                self.server,
            )
            backoff = 1.0
            while self.running:
                try:
                    self.sock = self.connect()
                except (OSError, ssl.SSLError) as exc:
                    self._disconnected(f"connect failed: {exc}")
                    if once:
                        raise
                    self._sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                backoff = 1.0
                try:
                    self._session(once)
                except (OSError, ssl.SSLError, ConnectionError) as exc:
                    self._disconnected(f"connection lost: {exc}")
                    if once:
                        raise
                except Exception as exc:
                    db.session.rollback()
                    log.exception("TAK gateway step failed; reconnecting")
                    self._disconnected(f"failed: {type(exc).__name__}")
                    if once:
                        raise
                    backoff = min(backoff * 2, self.max_backoff)
                finally:
                    self._close()
                if once:
                    break
                if self.running:
                    self._sleep(backoff)
            context.set_connected(db.session, self.ctx, self.server, False, "stopped")

    def stop(self) -> None:
        self.running = False

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while self.running and time.monotonic() < end:
            time.sleep(min(0.2, end - time.monotonic()))

    def _close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def _disconnected(self, reason: str) -> None:
        log.warning("TAK %s: %s", self.server, reason)
        try:
            context.set_connected(db.session, self.ctx, self.server, False, reason)
        except Exception:  # noqa: BLE001 - the database may be away too
            db.session.rollback()
            log.warning("could not record the TAK connection state", exc_info=True)

    def _session(self, once: bool) -> None:
        settings = self.app.extensions["settings"]
        live = fleet_positions.live_store()
        splitter = stream.StreamSplitter()
        self.cursor = None  # re-read from the saved mark: the picture, then what came after it
        self._presence()
        context.set_connected(db.session, self.ctx, self.server, True)
        log.info("TAK %s connected: sending the current picture", self.server)
        for cot in outbound.picture(db.session, self.ctx, settings=settings, live=live):
            self.send(cot)
        positions = {a: at for a, (at, _) in outbound.asset_positions(db.session, self.ctx, live=live).items()}
        next_presence = next_positions = time.monotonic()
        next_health = time.monotonic() + HEALTH_SECONDS
        while self.running:
            self._outbound(settings, live)
            if once:
                self._drain(splitter, live, wait=0.5)
                return
            self._drain(splitter, live, wait=TICK_SECONDS)
            now = time.monotonic()
            if now >= next_positions:
                next_positions = now + POSITION_POLL_SECONDS
                self._positions(positions, live)
            if now >= next_presence:
                next_presence = now + PRESENCE_SECONDS
                self._presence()
                context.set_connected(db.session, self.ctx, self.server, True)
            if now >= next_health:
                next_health = now + HEALTH_SECONDS
                log.info(
                    "TAK gateway health: connected to %s; %s",
                    self.server,
                    ", ".join(f"{k}={v}" for k, v in sorted(self.ctx.stats.items())),
                )

    def _presence(self) -> None:
        now = clock.now()
        self.send(
            writing.presence(
                uid=self.ctx.uid,
                callsign=self.ctx.callsign,
                time=now,
                stale=now + clock_timedelta(PRESENCE_SECONDS * 4),
            )
        )

    def _drain(self, splitter: stream.StreamSplitter, live, *, wait: float) -> None:
        readable, _, _ = select.select([self.sock], [], [], wait)
        if not readable and not (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
            return
        # Readable bytes may be TLS records only (TLS 1.3 session tickets after the handshake): read without
        # blocking, or the loop would wait out the socket timeout and take the connection for lost.
        self.sock.setblocking(False)
        try:
            data = self.sock.recv(65536)
        except (ssl.SSLWantReadError, BlockingIOError):
            return
        finally:
            self.sock.settimeout(SOCKET_TIMEOUT_SECONDS)
        if not data:
            raise ConnectionError("closed by the server")
        for raw in splitter.feed(data):
            inbound.handle(db.session, self.ctx, raw, live=live)
        if splitter.dropped:
            self.ctx.count("malformed", splitter.dropped)
            log.warning("TAK stream: %d oversized or unterminated event(s) dropped", splitter.dropped)
            splitter.dropped = 0

    def _outbound(self, settings, live) -> None:
        # The gateway's own writes (filings from TAK) are sequenced here too, whether or not a web process
        # runs its relay: sequencing is serialized in the database, any process may do it.
        relay.sequence(db.engine)
        newest = relay.last_seq(db.engine)
        if self.cursor is None:
            self.cursor = context.state(db.session, self.ctx, self.server).last_seq
            db.session.rollback()
        if newest <= self.cursor:
            return
        while True:
            rows, last = outbound.pending(db.session, self.ctx, self.cursor)
            # One marker per request per batch (its current state), at its last event; every GeoChat.
            last_of = {(r["data"] or {}).get("id"): i for i, r in enumerate(rows) if r["type"].startswith("casevac.")}
            for index, entry in enumerate(rows):
                request_id = (entry["data"] or {}).get("id")
                marker = not entry["type"].startswith("casevac.") or last_of.get(request_id) == index
                try:
                    cots = outbound.events_for(db.session, self.ctx, entry, settings=settings, live=live, marker=marker)
                except Exception:
                    db.session.rollback()
                    log.exception("TAK: event %s (%s) could not be turned into CoT", entry["seq"], entry["type"])
                    self.ctx.count("outbound_failed")
                    cots = []
                for cot in cots:
                    self.send(cot)
                db.session.rollback()
            # Saved once the batch is on the socket: a crash re-sends at most this batch, event for event the
            # same CoT (same uid, same time), which ATAK shows once.
            if last > self.cursor:
                context.save_seq(db.session, self.ctx, self.server, last)
            done = not rows or last == self.cursor
            self.cursor = last
            if done or len(rows) < 200:
                return

    def _positions(self, known: dict, live) -> None:
        """asset.position is live-only (not in the event log): poll the latest fixes and send what moved."""
        for asset_id, (at, asset) in outbound.asset_positions(db.session, self.ctx, live=live).items():
            if known.get(asset_id) != at:
                known[asset_id] = at
                self.send(outbound.asset_marker(db.session, self.ctx, asset, live=live))
        db.session.rollback()


def clock_timedelta(seconds: float):
    from datetime import timedelta

    return timedelta(seconds=seconds)


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True
