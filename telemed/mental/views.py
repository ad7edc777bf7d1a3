"""Mental-health endpoints (API.md, Telemedicine: screenings and self-referrals): thin views over
the services of telemed.mental (its confidentiality rules: telemed.mental.confidentiality)."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from config.extensions import db
from core import auth
from core.pagination import PageArgs
from telemed import policy
from telemed.mental import alerts, confidentiality, metrics, referrals, screening, screenings
from telemed.mental.schemas import (
    AccessLogPage,
    AlertListArgs,
    AlertOut,
    AlertPage,
    InstrumentList,
    MentalHealthMetricsArgs,
    MentalHealthMetricsOut,
    ReferralBookIn,
    ScreeningCreatedOut,
    ScreeningIn,
    ScreeningListArgs,
    ScreeningOut,
    ScreeningPage,
    SelfReferralDetailOut,
    SelfReferralIn,
    SelfReferralListArgs,
    SelfReferralPage,
    TrendArgs,
    TrendOut,
)

blp = Blueprint(
    "mental_health",
    __name__,
    description="Mental health: screening, risk alerts, confidential self-referral",
)


def _settings():
    return current_app.extensions["settings"]


@blp.route("/screening-instruments")
class Instruments(MethodView):
    @blp.response(200, InstrumentList)
    def get(self):
        """The instruments: items, answer range, bands and reliable-change threshold."""
        auth.current_user()
        return {"items": screening.describe()}


@blp.route("/screenings")
class Screenings(MethodView):
    @blp.arguments(ScreeningIn)
    @blp.response(201, ScreeningCreatedOut)
    @blp.alt_response(422, description="bad instrument or answers: the errors name each bad item")
    def post(self, body):
        """Screen yourself (member), or enter a screening you administered (mental-health clinician,
        with member_id). A flagged result alerts the mission's mental-health clinicians (no answers)."""
        return screenings.create_screening(
            db.session, actor=auth.current_user(roles=policy.CARE_ROLES), settings=_settings(), **body
        )

    @blp.arguments(ScreeningListArgs, location="query")
    @blp.response(200, ScreeningPage)
    def get(self, args):
        """Your own screenings (member) or the mission's (mental-health clinician), newest first."""
        return screenings.list_screenings(db.session, actor=auth.current_user(roles=policy.CARE_ROLES), **args)


@blp.route("/screenings/<screening_id>")
class ScreeningById(MethodView):
    @blp.response(200, ScreeningOut)
    @blp.alt_response(404, description="unknown, or not yours to see (the same answer)")
    def get(self, screening_id):
        """One screening: its member and the mission's mental-health clinicians only (audited)."""
        return screenings.get_screening(db.session, actor=auth.current_user(), screening_id=screening_id)


@blp.route("/screenings/<screening_id>/acknowledge")
class Acknowledge(MethodView):
    @blp.response(200, AlertOut)
    @blp.alt_response(409, description="no alert on this screening, or another clinician acknowledged it")
    def post(self, screening_id):
        """Take a flagged screening's alert (mental-health clinician): stops its escalation."""
        return alerts.acknowledge(db.session, actor=auth.current_user(roles={"clinician"}), screening_id=screening_id)


@blp.route("/screening-alerts")
class Alerts(MethodView):
    @blp.arguments(AlertListArgs, location="query")
    @blp.response(200, AlertPage)
    def get(self, args):
        """The mission's screening alerts, oldest first (mental-health clinicians)."""
        return alerts.list_alerts(db.session, actor=auth.current_user(roles={"clinician"}), **args)


@blp.route("/members/<member_id>/screening-trend")
class Trend(MethodView):
    @blp.arguments(TrendArgs, location="query")
    @blp.response(200, TrendOut)
    def get(self, args, member_id):
        """A member's scores over time with reliable change (PHQ-9: 5 points, PCL-5: 10)."""
        return screenings.trend(
            db.session, actor=auth.current_user(roles=policy.CARE_ROLES), member_id=member_id, **args
        )


@blp.route("/self-referrals")
class SelfReferrals(MethodView):
    @blp.arguments(SelfReferralIn)
    @blp.response(201, SelfReferralDetailOut)
    def post(self, body):
        """Ask for a mental-health consultation, confidentially, without going through command (member)."""
        return referrals.create_self_referral(db.session, actor=auth.current_user(roles={"member"}), **body)

    @blp.arguments(SelfReferralListArgs, location="query")
    @blp.response(200, SelfReferralPage)
    def get(self, args):
        """Your own self-referrals (member) or the mission's (mental-health clinician)."""
        return referrals.list_self_referrals(db.session, actor=auth.current_user(roles=policy.CARE_ROLES), **args)


@blp.route("/self-referrals/<referral_id>")
class SelfReferralById(MethodView):
    @blp.response(200, SelfReferralDetailOut)
    @blp.alt_response(404, description="unknown, or not yours to see (the same answer)")
    def get(self, referral_id):
        """One self-referral, with the earliest matching slots while it is open (audited)."""
        return referrals.get_self_referral(db.session, actor=auth.current_user(), referral_id=referral_id)


@blp.route("/self-referrals/<referral_id>/book")
class BookSelfReferral(MethodView):
    @blp.arguments(ReferralBookIn)
    @blp.response(201, SelfReferralDetailOut)
    @blp.alt_response(409, description="the time is not free, or the self-referral is not open")
    def post(self, body, referral_id):
        """Book one of the offered slots for your open self-referral (member): a mental_health
        consultation for yourself, linked to the referral."""
        return referrals.book_self_referral(
            db.session, actor=auth.current_user(roles={"member"}), referral_id=referral_id, **body
        )


@blp.route("/self-referrals/<referral_id>/close")
class CloseSelfReferral(MethodView):
    @blp.response(200, SelfReferralDetailOut)
    @blp.alt_response(409, description="already closed: the body lists the allowed next states")
    def post(self, referral_id):
        """Withdraw your self-referral (member) or close it once dealt with (mental-health clinician)."""
        return referrals.close_self_referral(
            db.session, actor=auth.current_user(roles=policy.CARE_ROLES), referral_id=referral_id
        )


@blp.route("/me/access-log")
class AccessLog(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, AccessLogPage)
    def get(self, args):
        """Who read or acted on your screenings and self-referrals, newest first."""
        return confidentiality.access_log(db.session, actor=auth.current_user(), **args)


@blp.route("/mental-health/metrics")
class Metrics(MethodView):
    @blp.arguments(MentalHealthMetricsArgs, location="query")
    @blp.response(200, MentalHealthMetricsOut)
    def get(self, args):
        """Aggregate counts for one calendar month; any group under 5 people is withheld (null)."""
        return metrics.metrics(db.session, actor=auth.current_user(roles={"admin", "coordinator", "clinician"}), **args)
