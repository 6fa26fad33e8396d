"""CI's dependency audit: pip-audit over the installed packages, summarised for the log.

Policy (README, "Reliability"):
- a known vulnerability in an installed package fails CI (exit 1), unless its ID
  is listed in .ci/audit-ignore with a reason;
- an advisory service that cannot be reached (no network, DNS, timeout, or it
  answers for none of the packages) is logged as "NOT RUN" and does not fail CI,
  so CI is never flaky because of the network.
PyPI's advisory data is tried first, then OSV. Does not upgrade anything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

SERVICES = ("pypi", "osv")
TOTAL_SECONDS = 240  # per service; pip-audit's own timeout is per request
IGNORE_FILE = Path(__file__).with_name("audit-ignore")


def ignored_ids(path: Path = IGNORE_FILE) -> list[str]:
    """IDs from the ignore file: one per line, '#' starts a comment (the reason)."""
    if not path.exists():
        return []
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def run_pip_audit(service: str, ignore: list[str]) -> tuple[dict | None, str]:
    """pip-audit's JSON report, or None and the reason it could not be had."""
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "report.json"
        command = [sys.executable, "-m", "pip_audit", "--vulnerability-service", service,
                   "--skip-editable", "--progress-spinner", "off", "--desc", "off",
                   "--timeout", "10", "--format", "json", "--output", str(output)]  # fmt: skip
        for vuln_id in ignore:
            command += ["--ignore-vuln", vuln_id]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=TOTAL_SECONDS)
        except subprocess.TimeoutExpired:
            return None, f"no answer within {TOTAL_SECONDS} s"
        except OSError as exc:
            return None, f"cannot run pip-audit: {exc}"
        try:
            return json.loads(output.read_text()), ""
        except (OSError, ValueError):
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            return None, (lines[-1] if lines else f"pip-audit exited with {done.returncode}")[:300]


def summarise(report: dict | None, reason: str = "", *, service: str = "pypi") -> tuple[int, list[str]]:
    """(exit code, log lines) for one pip-audit JSON report."""
    if report is None:
        return 0, [f"dependency audit: NOT RUN ({service}: {reason}); not failing CI"]
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if "skip_reason" in d]
    audited = [d for d in deps if "skip_reason" not in d]
    if not audited:
        return 0, [f"dependency audit: NOT RUN ({service} answered for none of the {len(deps)} "
                   "packages: every lookup failed, its advisory API is not reachable from here); not failing CI"]  # fmt: skip
    lines = []
    findings = [(d, v) for d in audited for v in d.get("vulns", [])]
    for dep, vuln in findings:
        fixed = ", ".join(vuln.get("fix_versions", [])) or "no fix yet"
        lines.append(f"  {dep['name']} {dep.get('version', '?')}: {vuln['id']} (fixed in {fixed})")
    if skipped:
        names = ", ".join(sorted(d["name"] for d in skipped))
        lines.append(f"  not audited ({len(skipped)}, unknown to {service}): {names}")
    head = f"{len(audited)} packages audited with {service}"
    if findings:
        return 1, [f"dependency audit: FAILED: {len(findings)} known vulnerabilities; {head}", *lines]
    return 0, [f"dependency audit: passed: no known vulnerabilities; {head}", *lines]


def main() -> int:
    ignore = ignored_ids()
    if ignore:
        print(f"dependency audit: ignoring (.ci/audit-ignore): {', '.join(ignore)}")
    code = 0
    for service in SERVICES:  # the next service only when this one could not be reached
        report, reason = run_pip_audit(service, ignore)
        code, lines = summarise(report, reason, service=service)
        print("\n".join(lines), flush=True)
        if not lines[0].startswith("dependency audit: NOT RUN"):
            break
    return code


if __name__ == "__main__":
    sys.exit(main())
