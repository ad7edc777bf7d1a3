"""What a consultation accumulates: clinical and psychotherapy notes, store-and-forward replies and
attachments (images and PDF, size-capped, stored outside the web root)."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from config.extensions import db
from core import audit, clock
from core.db import is_id
from core.errors import ApiError, conflict, forbidden, invalid, not_found
from core.models import User
from core.records import update_where
from telemed import policy
from telemed.scheduling import access
from telemed.scheduling.clinicians import is_mental_health_clinician
from telemed.scheduling.models import (
    RELEASED_STATUSES,
    Attachment,
    ClinicalNote,
    Consultation,
    PsychotherapyNote,
    Reply,
)

ACCEPTED_UPLOADS = ("image/jpeg", "image/png", "application/pdf")


def add_note(session, *, actor: User, consultation_id: str, kind: str, text: str) -> dict:
    consultation = access.load_visible(session, actor, consultation_id)
    if actor.id != consultation.clinician.user_id:
        raise forbidden("only the consultation's clinician writes notes")
    if kind == "psychotherapy":
        if not is_mental_health_clinician(session, actor):
            raise forbidden("psychotherapy notes are written by mental-health clinicians")
        note = PsychotherapyNote(consultation_id=consultation.id, author_id=actor.id, text=text)
    else:
        note = ClinicalNote(consultation_id=consultation.id, author_id=actor.id, text=text)
    session.add(note)
    session.flush()
    # The audit row names the note, never its text.
    audit.record(session, actor, f"telemed.note.{kind}.create", consultation, detail={"note_id": note.id})
    session.commit()
    return _note_out(note, kind)


def _note_out(note, kind: str) -> dict:
    return {
        "id": note.id,
        "consultation_id": note.consultation_id,
        "kind": kind,
        "author_id": note.author_id,
        "text": note.text,
        "created_at": note.created_at,
    }


def list_notes(session, *, actor: User, consultation_id: str) -> dict:
    """Clinical notes for the clinician, the patient and an invited clinician; psychotherapy notes for their
    author alone."""
    consultation = access.load_visible(session, actor, consultation_id)
    if not policy.may_read_clinical_notes(actor, consultation):
        raise forbidden("notes are read by the consultation's clinician, its patient and an invited clinician")
    clinical = (
        session.execute(db.select(ClinicalNote).where(ClinicalNote.consultation_id == consultation.id)).scalars().all()
    )
    items = [_note_out(n, "clinical") for n in clinical]
    own = (
        session.execute(
            db.select(PsychotherapyNote).where(
                PsychotherapyNote.consultation_id == consultation.id, PsychotherapyNote.author_id == actor.id
            )
        )
        .scalars()
        .all()
    )
    items += [_note_out(n, "psychotherapy") for n in own]
    items.sort(key=lambda n: (n["created_at"], n["id"]))
    access.audit_read(session, actor, consultation, "notes")
    if own:
        audit.record(session, actor, "telemed.note.psychotherapy.read", consultation, detail={"count": len(own)})
    session.commit()
    return {"items": items}


# ---------------------------------------------------------------------------------------------------
# Store-and-forward: replies, attachments, response clock


def add_reply(session, *, actor: User, consultation_id: str, text: str) -> Reply:
    consultation = access.load_visible(session, actor, consultation_id)
    if not policy.may_use_records(actor, consultation):
        raise forbidden("only the consultation's participants and invited clinicians write in it")
    if consultation.status in RELEASED_STATUSES:
        raise conflict(f"the consultation is {consultation.status}", allowed=[])
    now = clock.now()
    reply = Reply(consultation_id=consultation.id, author_id=actor.id, text=text, created_at=now)
    session.add(reply)
    first = False
    if actor.id == consultation.clinician.user_id:
        # The response-time clock stops at the clinician's first reply (exactly once).
        first = (
            update_where(
                session,
                Consultation,
                Consultation.id == consultation.id,
                Consultation.first_reply_at.is_(None),
                first_reply_at=now,
            )
            == 1
        )
    session.flush()
    audit.record(session, actor, "telemed.reply.create", consultation, detail={"reply_id": reply.id})
    access.publish(session, consultation, "consult.updated", change="reply", first_reply=first)
    session.commit()
    return reply


def _participants_list(session, *, actor: User, consultation_id: str, model, what: str) -> dict:
    """A consultation's replies or attachments, oldest first: its participants only, and an audited read."""
    consultation = access.load_visible(session, actor, consultation_id)
    if not policy.may_use_records(actor, consultation):
        raise forbidden(f"only the consultation's participants and invited clinicians see its {what}")
    access.audit_read(session, actor, consultation, what)
    items = (
        session.execute(
            db.select(model).where(model.consultation_id == consultation.id).order_by(model.created_at, model.id)
        )
        .scalars()
        .all()
    )
    session.commit()
    return {"items": items}


def list_replies(session, *, actor: User, consultation_id: str) -> dict:
    return _participants_list(session, actor=actor, consultation_id=consultation_id, model=Reply, what="replies")


def _upload_dir(settings) -> Path:
    path = Path(settings.UPLOAD_DIR)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def add_attachment(session, *, actor: User, consultation_id: str, stream, filename: str | None, settings) -> Attachment:
    """Store an image or PDF: type from the content (filetype), size capped at MAX_UPLOAD_MB (413),
    saved outside the web root under a random name."""
    import filetype

    consultation = access.load_visible(session, actor, consultation_id)
    if not policy.may_use_records(actor, consultation):
        raise forbidden("only the consultation's participants and invited clinicians add attachments")
    cap = settings.MAX_UPLOAD_MB * 1024 * 1024
    data = stream.read(cap + 1)
    if len(data) > cap:
        raise ApiError(413, f"the file is larger than {settings.MAX_UPLOAD_MB} MB")
    if not data:
        raise invalid("file", "the file is empty", location="files")
    kind = filetype.guess(data)
    content_type = kind.mime if kind else None
    if content_type not in ACCEPTED_UPLOADS:
        raise ApiError(
            415,
            "only JPEG, PNG and PDF files are accepted (the type is read from the content)",
            allowed=list(ACCEPTED_UPLOADS),
            detected=content_type,
        )
    stored_name = secrets.token_hex(16)
    path = _upload_dir(settings) / stored_name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    safe_name = None
    if filename:
        safe_name = "".join(ch for ch in Path(filename).name if ch.isprintable() and ch not in '"\\/')[:200] or None
    attachment = Attachment(
        consultation_id=consultation.id,
        uploaded_by=actor.id,
        content_type=content_type,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        stored_name=stored_name,
        filename=safe_name,
    )
    session.add(attachment)
    try:
        session.flush()
        audit.record(
            session,
            actor,
            "telemed.attachment.create",
            consultation,
            detail={"attachment_id": attachment.id, "content_type": content_type, "size": len(data)},
        )
        access.publish(session, consultation, "consult.updated", change="attachment")
        session.commit()
    except Exception:
        session.rollback()
        path.unlink(missing_ok=True)
        raise
    return attachment


def list_attachments(session, *, actor: User, consultation_id: str) -> dict:
    return _participants_list(
        session, actor=actor, consultation_id=consultation_id, model=Attachment, what="attachments"
    )


def read_attachment(
    session, *, actor: User, consultation_id: str, attachment_id: str, settings
) -> tuple[Attachment, bytes]:
    consultation = access.load_visible(session, actor, consultation_id)
    if not policy.may_use_records(actor, consultation):
        raise forbidden("only the consultation's participants and invited clinicians see its attachments")
    attachment = session.get(Attachment, attachment_id) if is_id(attachment_id) else None
    if attachment is None or attachment.consultation_id != consultation.id:
        raise not_found("attachment")
    data = (Path(settings.UPLOAD_DIR) / attachment.stored_name).read_bytes()
    access.audit_read(session, actor, consultation, "attachment")
    audit.record(session, actor, "telemed.attachment.read", consultation, detail={"attachment_id": attachment.id})
    session.commit()
    return attachment, data
