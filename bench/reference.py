"""Reference implementations: the obvious, slow way to compute what a service computes fast. The tests check
the service against them and the benches measure them as the baseline; the application never imports them."""

from __future__ import annotations


def naive_free_starts(
    windows: list[tuple[int, int]],
    busy: list[tuple[int, int]],
    *,
    duration: int,
    step: int,
    buffer: int,
    earliest: int,
    latest: int,
    unit: int = 60,
) -> list[int]:
    """The reference: expand every minute of every window and test each candidate minute by minute.
    The property tests check telemed.scheduling.availability.free_starts against it and
    bench/telemed_slots.py measures it as the baseline. Times must be multiples of `unit`."""
    taken: set[int] = set()
    for b0, b1 in busy:
        taken.update(range(b0, b1, unit))
    out = []
    for ws, we in windows:
        for minute in range(ws, we, unit):
            if (minute - ws) % step or not earliest <= minute <= latest or minute + duration > we:
                continue
            if all(t not in taken for t in range(minute, minute + duration + buffer, unit)):
                out.append(minute)
    return out
