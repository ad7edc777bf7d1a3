"""Security review gates that run with the suite: bandit over the application code, pip-audit over the
pinned runtime requirements (issue 8, "Security review")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CI = os.environ.get("CI") == "true"
# The application packages (what runs in production); tests and benchmarks are not deployed.
APP_CODE = ["config", "core", "casevac", "telemed", "realtime", "web", "wsgi.py"]


def test_bandit_finds_nothing_of_medium_or_high_severity():
    targets = [p for p in APP_CODE if (ROOT / p).exists()]
    result = subprocess.run(
        [str(BIN / "bandit"), "-q", "-r", *targets, "-c", ".bandit.yml", "-f", "json", "--severity-level", "medium"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode in (0, 1), f"bandit did not run: {result.stderr[-2000:]}"
    report = json.loads(result.stdout)
    assert not report.get("errors"), f"bandit could not read files: {report['errors']}"
    findings = [
        f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_severity']}/"
        f"{r['issue_confidence']}: {r['issue_text']}"
        for r in report["results"]
        if r["issue_severity"] in ("MEDIUM", "HIGH")
    ]
    assert findings == [], "bandit findings (fix, or mark `# nosec BXXX` with the reason):\n" + "\n".join(findings)
    # The run really looked at the code (a wrong path would "pass" with nothing scanned).
    assert report["metrics"]["_totals"]["loc"] > 500


def test_pip_audit_finds_no_known_vulnerability_in_the_runtime_requirements():
    # requirements.txt pins every package, transitive ones included: audit exactly those, without a resolver.
    result = subprocess.run(
        [
            str(BIN / "pip-audit"),
            "-r",
            "requirements.txt",
            "--no-deps",
            "--disable-pip",
            "-f",
            "json",
            "--progress-spinner",
            "off",
            "--timeout",
            "15",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        _service_unavailable(f"pip-audit exited {result.returncode}: {result.stderr.strip()[-500:]}")
        return
    vulnerable = [
        f"{d['name']} {d.get('version')}: "
        + ", ".join(
            f"{v['id']} (fixed in {', '.join(v.get('fix_versions') or []) or 'no release yet'})" for v in d["vulns"]
        )
        for d in report["dependencies"]
        if d.get("vulns")
    ]
    assert vulnerable == [], "known vulnerabilities in requirements.txt:\n" + "\n".join(vulnerable)
    skipped = [d for d in report["dependencies"] if d.get("skip_reason")]
    if skipped:
        # pip-audit reports a dependency it could not look up as skipped and still exits 0: that is no audit.
        _service_unavailable(
            f"{len(skipped)} of {len(report['dependencies'])} packages could not be audited, "
            f"e.g. {skipped[0]['skip_reason']}"
        )
    assert len(report["dependencies"]) >= 10


def _service_unavailable(reason: str) -> None:
    message = f"the vulnerability service (PyPI JSON API) cannot be reached: {reason}"
    # In CI an audit that did not happen fails the run, unless the CI environment declares that it has no
    # route to the service (PIP_AUDIT_UNAVAILABLE_OK=1, see .ci/run): then it is a visible skip, not a pass.
    if CI and os.environ.get("PIP_AUDIT_UNAVAILABLE_OK") != "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
