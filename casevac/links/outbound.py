"""Texts pushed back to a medic who filed by SMS or satellite (issue 16): when their request is acknowledged,
dispatched (asset and ETA), picked up or cancelled, the reply-format text (casevac.links.service.reply_for)
goes back over the channel the request came in on.

- Queued in the transaction of the status move (a casevac.requests.lifecycle status hook): one row per
  request and status (unique), so the text exists if and only if the move committed.
- Twilio and RockBLOCK: delivered by the sweeper task `casevac.links.outbound`; each row is claimed by a
  conditional UPDATE (pending and due, or a claim older than CLAIM_TIMEOUT) so of all processes exactly one
  sends it; a failure retries with a doubling backoff (30 s up to 30 min) until OUTBOUND_MAX_ATTEMPTS, a
  refusal by the provider (a 4xx answer, an unknown IMEI) ends it as failed. A crash between the provider's
  acceptance and the commit of `sent` is the one case that sends twice (after CLAIM_TIMEOUT).
- SMSSync phones pull theirs (GET ?task=send, offer); the phone sends only the uuids the server confirms to
  its POST ?task=sent, and the server confirms each uuid once (confirm): exactly once.
The generic JSON gateway has no outbound protocol: its medics get the answer to their own messages only.
Credentials (settings) are never written into a row, a log line or an answer.
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta

from sqlalchemy import and_, or_, select

from casevac.links.models import InboundMessage, MessageGateway, OutboundMessage
from casevac.links.service import reply_for
from core import clock
from core.records import update_where

log = logging.getLogger(__name__)

TOLD = ("acknowledged", "dispatched", "at_pickup", "cancelled")
# The inbound channel -> the channel its texts go back on (the generic JSON gateway has none).
PUSHED = {"twilio": "twilio", "smssync": "smssync", "sbd": "sbd"}
SWEPT = ("twilio", "sbd")
CLAIM_TIMEOUT = timedelta(minutes=5)
RETRY_FIRST, RETRY_AT_MOST = timedelta(seconds=30), timedelta(minutes=30)  # the doubling backoff
BATCH = 20
HTTP_TIMEOUT = 10


class DeliveryError(Exception):
    """A failed delivery: `permanent` when retrying cannot help (the provider refused the message)."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


# ---- queueing (in the status move's transaction) -------------------------------------------------


def queue_status_text(session, request, from_status: str) -> None:
    """The lifecycle status hook: queue the text of this move if the request came by a pushable channel."""
    if request.status not in TOLD:
        return
    origin = session.execute(
        select(InboundMessage.gateway_id, InboundMessage.channel, InboundMessage.sender)
        .where(InboundMessage.request_id == request.id, InboundMessage.outcome == "filed")
        .order_by(InboundMessage.id)
        .limit(1)
    ).first()
    if origin is None or origin.channel not in PUSHED:
        return
    session.add(
        OutboundMessage(
            gateway_id=origin.gateway_id,
            channel=PUSHED[origin.channel],
            recipient=origin.sender,
            request_id=request.id,
            status=request.status,
            text=reply_for(session, request),
            state="pending",
            attempts=0,
            next_attempt_at=clock.now(),
            created_at=clock.now(),
        )
    )


# ---- claiming ------------------------------------------------------------------------------------


def _claimable(now):
    return or_(
        and_(OutboundMessage.state == "pending", OutboundMessage.next_attempt_at <= now),
        and_(OutboundMessage.state == "sending", OutboundMessage.claimed_at < now - CLAIM_TIMEOUT),
    )


def _claim(session, message_id: str, now) -> bool:
    """The conditional UPDATE: True for the one caller that moved the row to `sending`."""
    won = update_where(
        session,
        OutboundMessage,
        OutboundMessage.id == message_id,
        _claimable(now),
        state="sending",
        claimed_at=now,
        attempts=OutboundMessage.attempts + 1,
    )
    session.commit()
    return won == 1


# ---- the sweeper task: Twilio and RockBLOCK ------------------------------------------------------


def deliver_task(session, *, now, settings) -> int:
    """Send what is due on Twilio and RockBLOCK; returns how many were sent."""
    due = (
        session.execute(
            select(OutboundMessage.id)
            .where(OutboundMessage.channel.in_(SWEPT), _claimable(now))
            .order_by(OutboundMessage.created_at, OutboundMessage.id)
            .limit(BATCH)
        )
        .scalars()
        .all()
    )
    session.rollback()
    sent = 0
    for message_id in due:
        if not _claim(session, message_id, now):
            continue  # another process has it
        message = session.get(OutboundMessage, message_id)
        gateway = session.get(MessageGateway, message.gateway_id)
        try:
            if gateway is None or gateway.revoked_at is not None:
                raise DeliveryError("the gateway was revoked", permanent=True)
            message.provider_id = SENDERS[message.channel](message, settings)
        except DeliveryError as exc:
            _failed(message, str(exc), permanent=exc.permanent, now=now, settings=settings)
        else:
            message.state, message.sent_at, message.last_error = "sent", clock.now(), None
            sent += 1
        session.commit()
    return sent


def _failed(message: OutboundMessage, error: str, *, permanent: bool, now, settings) -> None:
    message.last_error = error[:200]
    if permanent or message.attempts >= settings.OUTBOUND_MAX_ATTEMPTS:
        message.state = "failed"
    else:
        message.state = "pending"
        message.next_attempt_at = now + clock.backoff(message.attempts, first=RETRY_FIRST, at_most=RETRY_AT_MOST)
    log.warning(
        "casevac.links: outbound %s message %s not sent (attempt %d, %s): %s",
        message.channel,
        message.id,
        message.attempts,
        message.state,
        message.last_error,
    )


def _post(url: str, form: dict, *, auth: tuple[str, str] | None = None) -> tuple[int, str]:
    """POST a form; (status, body). Network errors are transient; the URL and credentials are never in an error."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise DeliveryError("the provider's API base is not an http(s) URL", permanent=True)
    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        # nosec B310: the scheme is checked above (http or https, the configured API base).
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as answer:  # nosec B310
            return answer.status, answer.read(4096).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(4096).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"provider unreachable ({type(exc).__name__})") from None


def send_twilio(message: OutboundMessage, settings) -> str:
    """Twilio's REST Messages API: POST {base}/2010-04-01/Accounts/{sid}/Messages.json, basic auth."""
    if not (settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN and settings.TWILIO_FROM):
        raise DeliveryError("TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM are not all set")
    sid = urllib.parse.quote(settings.TWILIO_ACCOUNT_SID, safe="")
    status, body = _post(
        f"{settings.TWILIO_API_BASE.rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json",
        {"To": message.recipient, "From": settings.TWILIO_FROM, "Body": message.text},
        auth=(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN),
    )
    if status in (200, 201):
        try:
            return str(json.loads(body).get("sid") or "")[:64] or None
        except (ValueError, AttributeError):
            return None
    # 429 and 5xx: try again later; another 4xx (bad number, bad credentials): retrying cannot help.
    raise DeliveryError(f"Twilio answered {status}", permanent=400 <= status < 500 and status != 429)


# RockBLOCK MT error codes after which retrying cannot help: no such device, bad hex, too long, no data.
ROCKBLOCK_PERMANENT = {"11", "14", "15", "16"}


def send_rockblock(message: OutboundMessage, settings) -> str:
    """RockBLOCK's MT endpoint: POST {base}/rockblock/MT imei, username, password, data (hex of the text: the
    SBD format has no reply encoding); answers `OK,<id>` or `FAILED,<code>,<text>`."""
    if not (settings.ROCKBLOCK_USERNAME and settings.ROCKBLOCK_PASSWORD):
        raise DeliveryError("ROCKBLOCK_USERNAME and ROCKBLOCK_PASSWORD are not set")
    status, body = _post(
        f"{settings.ROCKBLOCK_API_BASE.rstrip('/')}/rockblock/MT",
        {
            "imei": message.recipient,
            "username": settings.ROCKBLOCK_USERNAME,
            "password": settings.ROCKBLOCK_PASSWORD,
            "data": message.text.encode("utf-8").hex(),
        },
    )
    parts = body.strip().split(",", 2)
    if status == 200 and parts[0] == "OK":
        return (parts[1] if len(parts) > 1 else "")[:64] or None
    if status == 200 and parts[0] == "FAILED":
        code = parts[1] if len(parts) > 1 else "?"
        raise DeliveryError(f"RockBLOCK refused (code {code})", permanent=code in ROCKBLOCK_PERMANENT)
    raise DeliveryError(f"RockBLOCK answered {status}")


SENDERS = {"twilio": send_twilio, "sbd": send_rockblock}


# ---- SMSSync: the phone pulls ----------------------------------------------------------------------


def offer(session, *, gateway: MessageGateway, now, settings, limit: int = BATCH) -> list[OutboundMessage]:
    """GET ?task=send: the gateway's texts to send, each claimed for CLAIM_TIMEOUT (offered again after it,
    OUTBOUND_MAX_ATTEMPTS times at most, until the phone confirms it with POST ?task=sent)."""
    candidates = (
        session.execute(
            select(OutboundMessage.id)
            .where(OutboundMessage.gateway_id == gateway.id, OutboundMessage.channel == "smssync", _claimable(now))
            .order_by(OutboundMessage.created_at, OutboundMessage.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    session.rollback()
    offered = []
    for message_id in candidates:
        if _claim(session, message_id, now):
            message = session.get(OutboundMessage, message_id)
            if message.attempts > settings.OUTBOUND_MAX_ATTEMPTS:
                message.state, message.last_error = "failed", "offered without a confirmation (POST ?task=sent)"
                session.commit()
                continue
            offered.append(message)
    return offered


def confirm(session, *, uuids: list[str]) -> list[str]:
    """POST ?task=sent: of these uuids, those the phone may send now; each is confirmed once only."""
    confirmed = []
    for message_id in dict.fromkeys(uuids):
        won = update_where(
            session,
            OutboundMessage,
            OutboundMessage.id == message_id,
            OutboundMessage.channel == "smssync",
            OutboundMessage.state.in_(("pending", "sending")),
            OutboundMessage.gateway_id.in_(select(MessageGateway.id).where(MessageGateway.revoked_at.is_(None))),
            state="sent",
            sent_at=clock.now(),
            last_error=None,
        )
        if won == 1:
            confirmed.append(message_id)
    session.commit()
    return confirmed
