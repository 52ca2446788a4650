"""GitLab Code Quality report (a JSON array of issues with stable fingerprints).

The fingerprint hashes what identifies a finding without its line number (path, code,
message), plus its position among identical ones, so unrelated edits above it do not make
GitLab see a new issue."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

from ckptlint.output._paths import repo_relative, rule_for


def _severity(d) -> str:
    rule = rule_for(d.code)
    score = float(getattr(rule, "security_severity", None) or 0)
    if score >= 9:
        return "critical"
    if score >= 7 or d.code.startswith("E9"):
        return "major"
    return "major" if d.severity == "error" else "minor"


def render(diagnostics, report) -> str:
    ordered = sorted(diagnostics, key=lambda d: d.sort_key())
    seen: Counter = Counter()
    out = []
    for d in ordered:
        path = repo_relative(d.filename, report.cwd)
        ident = (path, d.code, d.message, d.cell)
        seen[ident] += 1
        digest = hashlib.sha256(json.dumps([*ident, seen[ident]]).encode("utf-8")).hexdigest()[:32]
        begin = d.location.row if d.location else 1
        end = d.end_location.row if d.end_location else begin
        issue = {
            "type": "issue",
            "check_name": d.code,
            "description": f"{d.code} {d.message}",
            "categories": ["Security"] if getattr(rule_for(d.code), "security_severity", None) else ["Bug Risk"],
            "severity": _severity(d),
            "fingerprint": digest,
            "location": {"path": path, "lines": {"begin": begin, "end": end}},
        }
        if d.help:  # the Code Climate spec's longer explanation, in markdown
            issue["content"] = {"body": d.help}
        out.append(issue)
    return json.dumps(out, indent=2, ensure_ascii=False) + "\n"
