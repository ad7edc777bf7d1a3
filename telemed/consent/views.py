"""Consent endpoints under /api/v1/telemed: the texts in force, the caller's own records, and consenting."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from config.extensions import db
from core import auth
from telemed.consent import service, texts
from telemed.consent.schemas import ConsentIn, ConsentList, ConsentOut, ConsentTextList
from telemed.kinds import KINDS

blp = Blueprint(
    "telemed_consent",
    __name__,
    description="Consent before consultations: versioned texts, append-only records",
)


@blp.route("/consent-texts")
class ConsentTexts(MethodView):
    @blp.response(200, ConsentTextList)
    def get(self):
        """The consent text in force for each kind of consultation."""
        auth.current_user()
        return {"items": [texts.current(kind) for kind in KINDS]}


@blp.route("/consents")
class Consents(MethodView):
    @blp.response(200, ConsentList)
    def get(self):
        """The caller's own consent records, oldest first (append-only)."""
        user = auth.current_user()
        return {"items": service.mine(db.session, user)}

    @blp.arguments(ConsentIn)
    @blp.response(201, ConsentOut)
    @blp.alt_response(200, schema=ConsentOut, description="already recorded for this version")
    @blp.alt_response(409, description="not the version in force: `current_version` names it")
    def post(self, body):
        """Consent, for oneself, to the text in force for a kind of consultation."""
        row, created = service.record(db.session, actor=auth.current_user(), **body)
        return row, 201 if created else 200
