"""Telemedicine endpoints (API.md "Telemedicine"): thin views, parse -> service -> respond."""

from __future__ import annotations

from flask import Response, current_app, g, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from config.extensions import db
from core import auth
from core.http import accepts_multipart
from telemed.scheduling import booking, clinicians, exports, participants, records, slots
from telemed.scheduling.participant_schemas import InvitationList, ParticipantIn, ParticipantList, ParticipantOut
from telemed.scheduling.schemas import (
    AttachmentList,
    AttachmentOut,
    AvailabilityIn,
    AvailabilityOut,
    ClinicianIn,
    ClinicianListArgs,
    ClinicianOut,
    ClinicianPage,
    ClinicianPatch,
    ConsultationIn,
    ConsultationListArgs,
    ConsultationOut,
    ConsultationPage,
    JoinOut,
    MetricsArgs,
    MetricsOut,
    NoteIn,
    NoteList,
    NoteOut,
    ReplyIn,
    ReplyList,
    ReplyOut,
    RescheduleIn,
    SlotArgs,
    SlotPage,
    StatusIn,
    UploadIn,
)

blp = Blueprint(
    "telemed",
    __name__,
    description="Telemedicine: clinicians, availability, slots, consultations",
)


def _settings():
    return current_app.extensions["settings"]


@blp.route("/clinicians")
class Clinicians(MethodView):
    @blp.arguments(ClinicianListArgs, location="query")
    @blp.response(200, ClinicianPage)
    def get(self, args):
        """Clinicians of the caller's mission, filtered by specialty, language (ISO 639-1) and kind."""
        return clinicians.list_clinicians(db.session, actor=auth.current_user(), **args)

    @blp.arguments(ClinicianIn)
    @blp.response(201, ClinicianOut)
    @blp.alt_response(409, description="the user already has a profile")
    def post(self, body):
        """Create a clinician profile for a user with role clinician (admin, or the clinician themself)."""
        return clinicians.create_clinician(db.session, actor=auth.current_user(roles={"admin", "clinician"}), **body)


@blp.route("/clinicians/<clinician_id>")
class ClinicianById(MethodView):
    @blp.response(200, ClinicianOut)
    def get(self, clinician_id):
        """A clinician's profile and availability."""
        return clinicians.get_clinician(db.session, actor=auth.current_user(), clinician_id=clinician_id)

    @blp.arguments(ClinicianPatch)
    @blp.response(200, ClinicianOut)
    def patch(self, body, clinician_id):
        """Change a profile (admin, or the clinician themself)."""
        return clinicians.update_clinician(
            db.session, actor=auth.current_user(roles={"admin", "clinician"}), clinician_id=clinician_id, **body
        )


@blp.route("/clinicians/<clinician_id>/availability")
class Availability(MethodView):
    @blp.response(200, AvailabilityOut)
    def get(self, clinician_id):
        """Weekly windows and date overrides, in the clinician's own time zone."""
        return clinicians.get_clinician(db.session, actor=auth.current_user(), clinician_id=clinician_id)

    @blp.arguments(AvailabilityIn)
    @blp.response(200, AvailabilityOut)
    def put(self, body, clinician_id):
        """Replace the availability: weekly windows and date overrides in the clinician's zone (an override
        replaces that day; an empty one closes it), slot length, buffer, minimum notice, horizon."""
        return clinicians.set_availability(
            db.session, actor=auth.current_user(roles={"admin", "clinician"}), clinician_id=clinician_id, **body
        )


# A FHIR R4 resource answered as application/fhir+json (documented as such, beside any JSON form).
_FHIR_CONTENT = {"application/fhir+json": {"schema": {"type": "object", "description": "a FHIR R4 resource"}}}


@blp.route("/slots")
class Slots(MethodView):
    @blp.arguments(SlotArgs, location="query")
    @blp.response(200, SlotPage)
    @blp.doc(
        responses={
            "200": {
                "description": "a page of slots, or with ?format=fhir a FHIR R4 Bundle of Slot",
                "content": {"application/json": {"schema": SlotPage}, **_FHIR_CONTENT},
            }
        }
    )
    def get(self, args):
        """Free slots in UTC, sorted by start, across the mission's clinicians matching the filters
        (`?format=fhir`: a FHIR R4 Bundle of Slot)."""
        user = auth.current_user()
        fmt = args.pop("format")
        page = slots.search_slots(db.session, actor=user, **args)
        if fmt == "fhir":
            response = jsonify(exports.fhir_slot_bundle(page["items"]))
            response.mimetype = "application/fhir+json"
            return response
        return page


@blp.route("/consultations")
class Consultations(MethodView):
    @blp.arguments(ConsultationListArgs, location="query")
    @blp.response(200, ConsultationPage)
    def get(self, args):
        """The caller's consultations by start (coordinators and admins: every diagnostic one as well)."""
        return booking.list_consultations(db.session, actor=auth.current_user(), **args)

    @blp.arguments(ConsultationIn)
    @blp.response(201, ConsultationOut)
    @blp.alt_response(
        409,
        description="the time is not free with that clinician (`reason`: too_soon, "
        "beyond_horizon, outside_availability, overlaps_booking)",
    )
    def post(self, body):
        """Book a consultation. Exactly one of many racing bookings of one time wins."""
        return booking.book(db.session, actor=auth.current_user(), **body)


@blp.route("/consultations/<consultation_id>")
class ConsultationById(MethodView):
    @blp.response(200, ConsultationOut)
    def get(self, consultation_id):
        """A consultation (mental-health ones: their clinician and patient only; every read audited)."""
        return booking.get_consultation(db.session, actor=auth.current_user(), consultation_id=consultation_id)


@blp.route("/consultations/<consultation_id>/status")
class ConsultationStatus(MethodView):
    @blp.arguments(StatusIn)
    @blp.response(200, ConsultationOut)
    @blp.alt_response(409, description="not allowed from the current status; `allowed` lists the next ones")
    def post(self, body, consultation_id):
        """booked -> checked_in -> in_progress -> fulfilled; booked|checked_in -> cancelled|noshow (reason)."""
        return booking.change_status(db.session, actor=auth.current_user(), consultation_id=consultation_id, **body)


@blp.route("/consultations/<consultation_id>/reschedule")
class Reschedule(MethodView):
    @blp.arguments(RescheduleIn)
    @blp.response(200, ConsultationOut)
    @blp.alt_response(409, description="the new time is not free; the booking stays where it was")
    def post(self, body, consultation_id):
        """Move a booked consultation atomically: the old time is freed only if the new one is taken."""
        return booking.reschedule(db.session, actor=auth.current_user(), consultation_id=consultation_id, **body)


@blp.route("/consultations/<consultation_id>/join")
class Join(MethodView):
    @blp.response(200, JoinOut)
    @blp.alt_response(403, description="not a participant")
    @blp.alt_response(409, description="outside the window (15 minutes before the start to the end)")
    def get(self, consultation_id):
        """The room and this participant's video-bridge token (see docs/telemed.md)."""
        return exports.join(
            db.session, actor=auth.current_user(), consultation_id=consultation_id, settings=_settings()
        )


@blp.route("/consultations/<consultation_id>/participants")
class Participants(MethodView):
    @blp.arguments(ParticipantIn)
    @blp.response(201, ParticipantOut)
    @blp.alt_response(403, description="not the consultation's clinician (or an admin, for a diagnostic one)")
    @blp.alt_response(409, description="the consultation is over, final or store-and-forward; or already invited")
    def post(self, body, consultation_id):
        """Invite a user of the mission as interpreter (with `language`) or second clinician: they get their
        own join token; what each part sees is in docs/telemed.md."""
        return participants.invite(db.session, actor=auth.current_user(), consultation_id=consultation_id, **body)

    @blp.response(200, ParticipantList)
    def get(self, consultation_id):
        """Everyone invited into the consultation, revoked invitations included."""
        return participants.list_participants(db.session, actor=auth.current_user(), consultation_id=consultation_id)


@blp.route("/consultations/<consultation_id>/participants/<participant_id>")
class ParticipantById(MethodView):
    @blp.response(200, ParticipantOut)
    @blp.alt_response(409, description="already revoked")
    def delete(self, consultation_id, participant_id):
        """Revoke an invitation: the invitee's token is refused from the next step and they leave the call."""
        return participants.revoke(
            db.session, actor=auth.current_user(), consultation_id=consultation_id, participant_id=participant_id
        )


@blp.route("/invitations")
class Invitations(MethodView):
    @blp.response(200, InvitationList)
    def get(self):
        """The caller's invitations in force (as interpreter or second clinician), soonest first."""
        return participants.my_invitations(db.session, actor=auth.current_user())


@blp.route("/consultations/<consultation_id>/notes")
class Notes(MethodView):
    @blp.arguments(NoteIn)
    @blp.response(201, NoteOut)
    def post(self, body, consultation_id):
        """Write a clinical or psychotherapy note (the consultation's clinician)."""
        return records.add_note(
            db.session, actor=auth.current_user(roles={"clinician"}), consultation_id=consultation_id, **body
        )

    @blp.response(200, NoteList)
    def get(self, consultation_id):
        """Clinical notes (clinician and patient); psychotherapy notes appear to their author alone.
        Cache-Control: no-store (never kept by a browser, proxy or service worker)."""
        user = auth.current_user()
        g.no_store = True
        return records.list_notes(db.session, actor=user, consultation_id=consultation_id)


@blp.route("/consultations/<consultation_id>/replies")
class Replies(MethodView):
    @blp.arguments(ReplyIn)
    @blp.response(201, ReplyOut)
    def post(self, body, consultation_id):
        """A written message; the clinician's first one stops the store-and-forward response clock."""
        return records.add_reply(db.session, actor=auth.current_user(), consultation_id=consultation_id, **body)

    @blp.response(200, ReplyList)
    def get(self, consultation_id):
        """The consultation's written messages, oldest first (participants)."""
        return records.list_replies(db.session, actor=auth.current_user(), consultation_id=consultation_id)


@blp.route("/consultations/<consultation_id>/attachments")
class Attachments(MethodView):
    @accepts_multipart
    @blp.arguments(UploadIn, location="files")
    @blp.response(201, AttachmentOut)
    @blp.alt_response(413, description="larger than MAX_UPLOAD_MB")
    @blp.alt_response(415, description="not a JPEG, PNG or PDF (read from the content)")
    def post(self, files, consultation_id):
        """Upload an image or PDF (multipart field `file`) for store-and-forward."""
        user = auth.current_user()
        upload = files["file"]
        return records.add_attachment(
            db.session,
            actor=user,
            consultation_id=consultation_id,
            stream=upload.stream,
            filename=upload.filename,
            settings=_settings(),
        )

    @blp.response(200, AttachmentList)
    def get(self, consultation_id):
        """The consultation's attachments (participants)."""
        return records.list_attachments(db.session, actor=auth.current_user(), consultation_id=consultation_id)


@blp.route("/consultations/<consultation_id>/attachments/<attachment_id>")
class AttachmentContent(MethodView):
    @blp.response(200, description="the file, as an attachment (image/jpeg, image/png or application/pdf)")
    def get(self, consultation_id, attachment_id):
        """Download an attachment (never rendered inline, never an executable type)."""
        user = auth.current_user()
        attachment, data = records.read_attachment(
            db.session, actor=user, consultation_id=consultation_id, attachment_id=attachment_id, settings=_settings()
        )
        name = f"{attachment.id}.{ {'image/jpeg': 'jpg', 'image/png': 'png'}.get(attachment.content_type, 'pdf') }"
        return Response(
            data,
            mimetype=attachment.content_type,
            headers={"Content-Disposition": f'attachment; filename="{name}"', "X-Content-Type-Options": "nosniff"},
        )


@blp.route("/consultations/<consultation_id>.ics")
class Invitation(MethodView):
    @blp.response(200, description="text/calendar (RFC 5545)")
    def get(self, consultation_id):
        """The iCalendar invitation (times in the clinician's zone, UTC in the description)."""
        user = auth.current_user()
        body = exports.ics(db.session, actor=user, consultation_id=consultation_id)
        return Response(
            body, mimetype="text/calendar", headers={"Content-Disposition": 'attachment; filename="consultation.ics"'}
        )


@blp.route("/consultations/<consultation_id>/fhir")
class FhirAppointment(MethodView):
    @blp.response(200)
    @blp.doc(responses={"200": {"description": "a FHIR R4 Appointment", "content": _FHIR_CONTENT}})
    def get(self, consultation_id):
        """The consultation as a FHIR R4 Appointment."""
        user = auth.current_user()
        response = jsonify(exports.fhir_appointment(db.session, actor=user, consultation_id=consultation_id))
        response.mimetype = "application/fhir+json"
        return response


@blp.route("/metrics")
class Metrics(MethodView):
    @blp.arguments(MetricsArgs, location="query")
    @blp.response(200, MetricsOut)
    def get(self, args):
        """Consultation counts and the store-and-forward response clock (coordinators and admins)."""
        return booking.metrics(db.session, actor=auth.current_user(roles={"coordinator", "admin"}), **args)
