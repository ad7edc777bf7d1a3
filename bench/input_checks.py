"""What the body checks of issue 17 cost per request (core.inputs.check_document: nesting depth and NUL/lone
surrogate scan of every JSON body), against json.loads of the same body as the baseline in the same run:
the full walk, and the walk as served (skipped when the raw text has few brackets and no \\u0000 or
\\udXXX escape).

    PYTHONPATH=. .venv/bin/python bench/input_checks.py

Bodies: a typical 9-line filing with two casualties; the same filing with 100 casualties; a 500 KB body of
many short strings (close to MAX_BODY_KB, the worst case per byte).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import cpu_model  # noqa: E402
from core.inputs import check_document  # noqa: E402
from tests.casevac.conftest import CASUALTY, body  # noqa: E402


def _time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best


def main() -> None:
    bodies = {
        "filing, 2 casualties": body(casualties=[dict(CASUALTY, zap=f"A-{i}") for i in range(2)]),
        "filing, 100 casualties": body(casualties=[dict(CASUALTY, zap=f"A-{i}") for i in range(100)]),
        "500 KB of short strings": {"items": [f"item-{i:06d}" for i in range(40000)]},
    }
    print(f"machine: {cpu_model()}")
    for name, document in bodies.items():
        raw = json.dumps(document).encode()
        repeat = max(3, int(200_000 / len(raw)))
        parse = _time(lambda raw=raw: json.loads(raw), repeat)
        walk = _time(lambda document=document: check_document(document), repeat)
        check = _time(lambda document=document, raw=raw: check_document(document, raw=raw), repeat)
        print(
            f"{name:24s} {len(raw) / 1024:6.1f} KB  json.loads {parse * 1e3:7.3f} ms  full walk {walk * 1e3:7.3f} ms "
            f"({walk / parse:4.1f}x)  as served {check * 1e3:7.3f} ms ({check / parse:4.2f}x)"
        )


if __name__ == "__main__":
    main()
