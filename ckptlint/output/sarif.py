"""SARIF 2.1.0 for GitHub code scanning and other SARIF readers: a view of the diagnostics.

Columns are Unicode code points (declared in `run.columnKind`), as in the JSON output.
Paths are relative to the repository root and resolved against `%SRCROOT%`."""

from __future__ import annotations

import json
import re
from typing import Dict, List
from urllib.parse import quote

from ckptlint import __version__
from ckptlint.diagnostic import local_page, shareable, web_url
from ckptlint.output._paths import is_url, repo_relative, rule_for

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = "https://github.com/ckptlint/ckptlint"
SRCROOT = "The root of the repository checked (the folder checked outside a repository)."
_SECTION = re.compile(r"^## (.+)$", re.MULTILINE)


def _section(doc: str, title: str) -> str:
    parts = _SECTION.split(doc)
    # parts: [before, title1, body1, title2, body2, ...]
    for name, body in zip(parts[1::2], parts[2::2]):
        if name.strip() == title:
            return body.strip()
    return ""


def rule_descriptor(code: str, name: str) -> dict:
    """A reportingDescriptor from the rule's own metadata and docs; error codes (E9xx) that
    are not rules get a short one pointing at docs/errors.md."""
    from ckptlint.output.rule_docs import rule_markdown

    rule = rule_for(code)
    if rule is None:
        help_text = _error_help(code)
        return _with_help_uri({
            "id": code,
            "name": name,
            "shortDescription": {"text": f"{name}: the file could not be checked"},
            "fullDescription": {"text": "ckptlint could not check this file; the message says why."},
            "help": {"text": _plain(help_text), "markdown": help_text},
            "defaultConfiguration": {"level": "error"},
            "properties": {"tags": ["ckptlint-error"]},
        }, web_url("errors.md") if code.startswith("E9") else None)
    doc = rule.doc_text()
    tags: List[str] = [rule.phase]
    props: Dict[str, object] = {}
    if rule.security_severity:
        tags += ["security", "external/cwe/cwe-502"]
        props["security-severity"] = str(rule.security_severity)
    props["tags"] = tags
    props["precision"] = "high"
    return _with_help_uri({
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": _plain(rule.summary)},
        "fullDescription": {"text": _plain(_section(doc, "What it does") or rule.summary)},
        "help": {"text": doc, "markdown": rule_markdown(rule)},
        "defaultConfiguration": {"level": "error" if rule.severity() == "error" else "warning"},
        "properties": props,
    }, shareable(rule.docs_url) or web_url(f"rules/{rule.code}.md"))


def _with_help_uri(descriptor: dict, uri) -> dict:
    """helpUri must be a URI when present (the schema): left out when there is no page on
    the web (a page of the installed package would be a path of this machine)."""
    if uri:
        descriptor["helpUri"] = uri
    return descriptor


def _error_help(code: str) -> str:
    """What docs/errors.md says about an E9xx code (its table row: when, what to do), as the
    rule's help is its page: embedded, so the SARIF file needs no link to be understood."""
    page = local_page("errors.md")
    text = page.read_text(encoding="utf-8") if page else ""
    for row in text.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] == f"`{code}`":
            return f"**When:** {cells[2]}\n\n**What to do:** {cells[3]}"
    return f"ckptlint could not check this file; the message says why (`{code}` in ckptlint's docs/errors.md)."


def _plain(text: str) -> str:
    return " ".join(text.replace("`", "").split())


def _region(start, end) -> dict:
    region = {"startLine": start.row, "startColumn": start.column}
    if end is not None:
        region["endLine"] = end.row
        region["endColumn"] = end.column
    return region


def _uri(filename: str, cwd) -> str:
    return filename if is_url(filename) else quote(repo_relative(filename, cwd))


def _artifact(uri: str) -> dict:
    if is_url(uri):  # a checkpoint read where it lives: an absolute URI of its own
        return {"uri": uri}
    return {"uri": uri, "uriBaseId": "%SRCROOT%"}


def _message(d) -> dict:
    """The headline as the first sentence (what SARIF viewers show where space is short, and
    GitHub as the alert's title), then the finding's help; markdown keeps them paragraphs.
    The rule's whole explanation stays in the rule's `help`."""
    if not d.help:
        return {"text": d.message}
    stop = "" if d.message.endswith((".", "!", "?")) else "."
    return {"text": f"{d.message}{stop} {d.help}", "markdown": f"{d.message}\n\n{d.help}"}


def _result(d, index: int, uri: str) -> dict:
    result = {
        "ruleId": d.code,
        "ruleIndex": index,
        "level": "error" if d.severity == "error" else "warning",
        "message": _message(d),
        "locations": [{"physicalLocation": {"artifactLocation": _artifact(uri)}}],
    }
    if d.location is not None:
        result["locations"][0]["physicalLocation"]["region"] = _region(d.location, d.end_location)
    props = {}
    if d.cell is not None:
        props["cell"] = d.cell  # notebook rows are relative to this cell
    if d.key is not None:
        props["key"] = d.key
    if props:
        result["properties"] = props
    if d.fix is not None and d.fix.edits:
        label = d.fix.message + (" (unsafe fix)" if d.fix.applicability != "safe" else "")
        result["fixes"] = [{
            "description": {"text": label},
            "artifactChanges": [{
                "artifactLocation": _artifact(uri),
                "replacements": [
                    {"deletedRegion": _region(e.start, e.end), "insertedContent": {"text": e.content}}
                    for e in d.fix.edits
                ],
            }],
        }]
    return result


def render(diagnostics, report) -> str:
    ordered = sorted(diagnostics, key=lambda d: d.sort_key())
    codes = sorted(set(getattr(report, "codes", None) or []) | {d.code for d in ordered})
    names = {d.code: d.name for d in ordered}
    rules = [rule_descriptor(c, names.get(c) or getattr(rule_for(c), "name", c)) for c in codes]
    index = {r["id"]: i for i, r in enumerate(rules)}
    run = {
        "tool": {"driver": {
            "name": "ckptlint",
            "version": __version__,
            "semanticVersion": __version__,
            "informationUri": INFORMATION_URI,
            "rules": rules,
        }},
        # what the relative paths are relative to, in words: its absolute path would be one
        # of the machine that ran the check (a SARIF file is uploaded and read elsewhere)
        "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": SRCROOT}}},
        "columnKind": "unicodeCodePoints",
        "results": [_result(d, index[d.code], _uri(d.filename, report.cwd)) for d in ordered],
    }
    doc = {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
