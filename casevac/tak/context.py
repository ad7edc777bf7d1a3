"""Who a TAK gateway is and where it stands: its context for one mission and its state row (the log seq it
has sent up to, connected or not, the heartbeat /readyz reads).

Identity: one service user per mission, `tak-gateway-<code>` (role medic, no usable password, created on
first start): what arrives from ATAK is filed, updated and cancelled by it with exactly a field medic's
rights (file; correct before dispatch; cancel before dispatch; add signs any time), and the audit log shows
every such change as that user's, with the TAK uid and callsign in an extra `tak.*` audit row. The filer's
callsign (line 2) is the TAK callsign.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from casevac.tak.models import TakGatewayState
from core import clock
from core import service as accounts
from core.auth import hash_password
from core.errors import ApiError
from core.models import Mission, User
from core.records import update_where
from realtime.models import Event


@dataclass
class Context:
    """Who the gateway is, for one mission."""

    mission_id: str
    mission_code: str
    user_id: str
    uid: str  # the gateway's TAK uid
    callsign: str
    stats: dict = field(default_factory=dict)
    # TAK contacts seen (callsign, lower case -> uid): where GeoChat goes for requests not filed from TAK.
    contacts: dict = field(default_factory=dict)

    def count(self, name: str, by: int = 1) -> None:
        self.stats[name] = self.stats.get(name, 0) + by


def gateway_username(mission_code: str) -> str:
    return f"tak-gateway-{mission_code.lower()}"[:80]


def ensure_context(session, *, mission_code: str, uid: str = "", callsign: str = "") -> Context:
    """The mission and its gateway user (created once; two gateways starting together create one)."""
    mission = session.execute(select(Mission).where(Mission.code == mission_code)).scalar_one_or_none()
    if mission is None:
        raise LookupError(f"no mission with code {mission_code!r}")
    username = gateway_username(mission.code)
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        try:
            user = User(
                username=username,
                display_name=f"TAK gateway ({mission.code})",
                role="medic",
                mission_id=mission.id,
                password_hash=hash_password(secrets.token_urlsafe(32)),
            )
            accounts.add_user(session, user, actor=None, audit_detail={"service": "tak-gateway"})
        except ApiError:  # 409: another gateway starting at the same time created it
            user = session.execute(select(User).where(User.username == username)).scalar_one()
    if user.mission_id != mission.id or user.role != "medic":
        raise LookupError(f"user {username} exists but is not this mission's gateway user")
    if not user.active:
        raise LookupError(
            f"the gateway user {username} is disabled (PATCH /api/v1/users/{user.id} "
            '{"active": true} to let the gateway file requests again)'
        )
    session.commit()
    return Context(
        mission_id=mission.id,
        mission_code=mission.code,
        user_id=user.id,
        uid=uid or f"medevac-gateway-{mission.code.lower()}",
        callsign=callsign or f"MEDEVAC-{mission.code}",
    )


def state(session, ctx: Context, server: str) -> TakGatewayState:
    row = session.execute(
        select(TakGatewayState).where(TakGatewayState.mission_id == ctx.mission_id, TakGatewayState.server == server)
    ).scalar_one_or_none()
    if row is None:
        try:
            with session.begin_nested():
                # A new gateway starts at the log's end: the picture carries what is current.
                last = session.execute(select(func.coalesce(func.max(Event.seq), 0))).scalar_one()
                row = TakGatewayState(mission_id=ctx.mission_id, server=server, last_seq=last, updated_at=clock.now())
                session.add(row)
        except IntegrityError:
            row = session.execute(
                select(TakGatewayState).where(
                    TakGatewayState.mission_id == ctx.mission_id, TakGatewayState.server == server
                )
            ).scalar_one()
        session.commit()
    return row


def save_seq(session, ctx: Context, server: str, seq: int) -> None:
    """Only forward: of two copies running, the slower never moves the mark back."""
    update_where(
        session,
        TakGatewayState,
        TakGatewayState.mission_id == ctx.mission_id,
        TakGatewayState.server == server,
        TakGatewayState.last_seq < seq,
        last_seq=seq,
        updated_at=clock.now(),
    )
    session.commit()


def set_connected(session, ctx: Context, server: str, connected: bool, error: str | None = None) -> None:
    now = clock.now()
    values = {"connected": connected, "heartbeat_at": now, "updated_at": now, "last_error": (error or "")[:200] or None}
    if connected:
        values["connected_at"] = now
    update_where(
        session,
        TakGatewayState,
        TakGatewayState.mission_id == ctx.mission_id,
        TakGatewayState.server == server,
        **values,
    )
    session.commit()


def readiness() -> dict:
    """/readyz: each gateway's connection, from its state row (a gateway silent for 2 minutes is "silent")."""
    from config.extensions import db as _db

    try:
        rows = _db.session.execute(
            select(Mission.code, TakGatewayState.server, TakGatewayState.connected, TakGatewayState.heartbeat_at).join(
                Mission, Mission.id == TakGatewayState.mission_id
            )
        ).all()
        _db.session.rollback()
    except Exception:  # noqa: BLE001 - informative only
        _db.session.rollback()
        return {}
    if not rows:
        return {}
    now = clock.now()
    out = {}
    for code, server, connected, heartbeat in rows:
        if heartbeat is None or now - heartbeat > timedelta(minutes=2):
            out[f"{code} {server}"] = "silent"
        else:
            out[f"{code} {server}"] = "connected" if connected else "disconnected"
    return {"tak": out}
