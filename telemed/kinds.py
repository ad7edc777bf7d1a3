"""The kinds of consultation (API.md, Telemedicine): what a clinician takes, what a booking is, what a consent
text covers. Shared by the scheduling and consent sub-domains (their CHECK constraints and validators)."""

KINDS = ("diagnostic", "mental_health")
