"""The consent texts in force, one per kind of consultation. A new wording is a new version: patients
consent again before their next consultation of that kind (older records stay, append-only)."""

from __future__ import annotations

import hashlib

TEXTS = {
    "diagnostic": (
        "2026-12-01",
        "I agree to a remote consultation with a clinician of the mission by video, audio, chat or written "
        "messages. I understand that the clinician sees and hears only what the connection carries, may ask "
        "me to see a medic or a facility in person, and writes clinical notes that the mission's medical "
        "staff may read for my care. I may stop the consultation at any time.",
    ),
    "mental_health": (
        "2026-12-01",
        "I agree to a confidential remote consultation with a mental-health clinician by video, audio, chat "
        "or written messages. What I say is seen only by the clinician and me; my chain of command is not "
        "told, except when my life or someone else's is in danger. The clinician may keep private "
        "psychotherapy notes that no one else reads. I may stop the consultation at any time.",
    ),
}


def current(kind: str) -> dict:
    version, text = TEXTS[kind]
    return {"kind": kind, "version": version, "text": text, "sha256": hashlib.sha256(text.encode()).hexdigest()}
