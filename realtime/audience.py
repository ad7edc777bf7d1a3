"""Room names: the server computes a user's rooms; an event names the rooms it goes to (API.md, Audience)."""

from __future__ import annotations


def mission(mission_id: str) -> str:
    """Every user of the mission."""
    return f"mission:{mission_id}"


def mission_role(mission_id: str, role: str) -> str:
    return f"mission:{mission_id}:role:{role}"


def user(user_id: str) -> str:
    return f"user:{user_id}"


def mission_mental_health(mission_id: str) -> str:
    """The mission's mental-health clinicians (specialty psychiatry or psychology)."""
    return f"mission:{mission_id}:mental_health"


def coordinators(mission_id: str) -> list[str]:
    return [mission_role(mission_id, "coordinator")]


def coordinators_and_admins(mission_id: str) -> list[str]:
    return [mission_role(mission_id, "coordinator"), mission_role(mission_id, "admin")]
