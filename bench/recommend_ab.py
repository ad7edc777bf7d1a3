"""Recommendations end to end, two code trees in one run: a long-lived worker per tree on the fixture of
`dispatch_bench.py --only recommend-service` (SQLite, 1,000 assets, 100 facilities, no Redis, the heap frozen),
answering HTTP requests (Flask test client) in alternating batches, so that both meet the same machine load
(on a shared machine, separate runs minutes apart do not). Each tree needs bench/dispatch_bench.py's
`_recommend_fixture` (copy this tree's bench/dispatch_bench.py into an older one).

Run: PYTHONPATH=. .venv/bin/python bench/recommend_ab.py OTHER_TREE [--rounds 12] [--batch 25]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import percentile

WORKER = r"""
import json, os, sys, tempfile, time
sys.path.insert(0, os.getcwd())
from bench.dispatch_bench import _recommend_fixture
from config.settings import Settings
settings = Settings.from_env(ENV="test", DATABASE_URL=f"sqlite:///{tempfile.mkdtemp()}/bench.db", REDIS_URL=None,
    REDIS_PREFIX="benchab", LOG_LEVEL="WARNING", SWEEPER_INTERVAL_SECONDS=3600.0)
app, request_id, _, headers = _recommend_fixture(settings)
http = app.test_client()
url = f"/api/v1/casevac/requests/{request_id}/recommendations"
for _ in range(10):
    assert http.get(url, headers=headers).status_code == 200
from config.app import freeze_heap
freeze_heap()
print("ready", flush=True)
for line in sys.stdin:
    times = []
    for _ in range(int(line)):
        start = time.perf_counter()
        assert http.get(url, headers=headers).status_code == 200
        times.append(time.perf_counter() - start)
    print(json.dumps(times), flush=True)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("other", help="the other code tree (a worktree or an unpacked git archive)")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--batch", type=int, default=25, help="requests per tree per round")
    args = parser.parse_args()
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    trees = [os.path.abspath(args.other), here]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER],
            cwd=tree,
            env={**os.environ, "PYTHONPATH": "."},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for tree in trees
    ]
    for worker in workers:
        if worker.stdout.readline().strip() != "ready":
            raise SystemExit("a worker failed to start (run it by hand to see why)")
    times: list[list[float]] = [[], []]
    loads = []
    for round_ in range(args.rounds):
        for i in (0, 1) if round_ % 2 == 0 else (1, 0):  # each goes first every other round
            workers[i].stdin.write(f"{args.batch}\n")
            workers[i].stdin.flush()
            times[i] += json.loads(workers[i].stdout.readline())
        loads.append(os.getloadavg()[0])
    for worker in workers:
        worker.stdin.close()
        worker.wait()
    print(
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {args.rounds} rounds x {args.batch} requests per "
        f"tree, load average {min(loads):.2f}-{max(loads):.2f}"
    )
    for tree, values in zip(trees, times, strict=True):
        p50, p99 = percentile(values, 50) * 1000, percentile(values, 99) * 1000
        print(f"  {tree}: HTTP p50 {p50:.1f} ms, p90 {percentile(values, 90) * 1000:.1f} ms, p99 {p99:.1f} ms")
    other, this = times
    print(
        f"  other / this tree: p50 {percentile(other, 50) / percentile(this, 50):.2f}, "
        f"p99 {percentile(other, 99) / percentile(this, 99):.2f}"
    )


if __name__ == "__main__":
    main()
