"""Benchmarks, each run as a script with PYTHONPATH=. (docs/benchmarks.md), and the helpers they share."""

from __future__ import annotations

import platform
from pathlib import Path


def percentile(values, q: float) -> float:
    """The q-th percentile (0-100) of values, nearest rank on the sorted values; nan when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def cpu_model() -> str:
    """The CPU's "model name" from /proc/cpuinfo, else platform.processor()."""
    return next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
