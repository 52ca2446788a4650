"""Rule documentation, generated from each rule's own class: `ckptlint rule`, docs/rules/.

`python -m ckptlint.output.rule_docs [DOCS_DIR]` rewrites docs/rules/; a test fails when it is stale."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from ckptlint.rules import all_rules
from ckptlint.workspace.selection import OPT_IN_PREFIX

OPT_IN_LEGEND = (
    "(opt-in) rules are off by default: a selector turns one on when it names its code or its "
    "group (`CKPT05`), or is `ALL`; `CKPT` alone selects the default rules only."
)

_FIX_TEXT = {
    "safe": "Fix is {availability} available (safe: applied by `--fix`).",
    "unsafe": "Fix is {availability} available (unsafe: applied only with `--fix --unsafe-fixes`).",
    "sometimes": "Fix is {availability} available; it is safe in some cases and unsafe in others (see Fix safety).",
    "none": "No automatic fix; the message says what to do.",
}


def _fence(code: str) -> str:
    return "```python\n" + code.rstrip("\n") + "\n```\n"


def rule_markdown(rule) -> str:
    parts = [f"# {rule.name} ({rule.code})\n", f"{rule.summary}\n"]
    status = _FIX_TEXT.get(rule.fix_safety, "").format(availability=rule.fix_availability)
    if rule.phase == "runtime":
        status = "Runtime rule: reported by `ckptlint verify` (or `check --runtime`) on checkpoint files."
    enabled = "Enabled by default." if rule.default_enabled else (
        f'Opt-in: enable with `extend-select = ["{rule.code}"]`, its group '
        f'`{rule.code[:OPT_IN_PREFIX]}`, or `ALL`; `select = ["CKPT"]` leaves it out.'
    )
    parts.append(f"{status} {enabled}\n")
    parts.append(rule.doc_text())
    parts += _options(rule)
    parts += _examples("## Examples that fire\n", rule.invalid)
    parts += _examples("## Examples that do not fire\n", rule.valid)
    return "\n".join(parts)


def _options(rule) -> list:
    """What `[tool.ckptlint.rule-options.CODE]` may set: each option's kind, default and doc."""
    if not rule.options:
        return []
    parts = ["## Options\n", f"Set in `[tool.ckptlint.rule-options.{rule.code}]` (pyproject.toml):\n"]
    for name, option in rule.options.items():
        parts.append(f"- `{name}` ({option.kind}, default `{_toml(option.default)}`): {option.doc}")
    table = "\n".join(f"{name} = {_toml(o.default)}" for name, o in rule.options.items())
    parts.append("\n```toml\n" + f"[tool.ckptlint.rule-options.{rule.code}]\n{table}\n" + "```\n")
    return parts


def _examples(title: str, examples) -> list:
    """A section of examples: each one's config, code, and for those that fire the message
    (when the example gives it) and the fixed code."""
    parts = [title] if examples else []
    for ex in examples:
        if ex.config:
            parts.append(f"With `{_toml_inline(ex.config)}` in `[tool.ckptlint]`:\n")
        parts.append(_fence(ex.source))
        if getattr(ex, "message", None) is not None:
            parts.append("ckptlint says:\n")
            said = ex.message + (f"\n  help: {ex.help}" if getattr(ex, "help", None) else "")
            parts.append("```text\n" + said + "\n```\n")
        if getattr(ex, "fixed_source", None) is not None:
            parts.append("Fixed:\n")
            parts.append(_fence(ex.fixed_source))
    return parts


def _toml_inline(config: dict) -> str:
    return ", ".join(f"{_toml_key(k)} = {_toml(v)}" for k, v in config.items())


def _toml(value) -> str:
    """A value as TOML writes it inline (a table as `{ key = value }`)."""
    if isinstance(value, dict):
        return "{ " + _toml_inline(value) + " }" if value else "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)  # true/false, numbers and basic strings are spelled alike


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def rule_json(rule) -> dict:
    return {
        "code": rule.code,
        "name": rule.name,
        "summary": rule.summary,
        "fix": rule.fix_safety,
        "phase": rule.phase,
        "default_enabled": rule.default_enabled,
        "explanation": rule.doc_text(),
        "options": {name: {"type": o.kind, "default": o.default, "doc": o.doc} for name, o in rule.options.items()},
    }


def rule_listing(fmt: str = "text") -> str:
    rules = all_rules().values()
    if fmt == "json":
        return json.dumps([rule_json(r) for r in rules], indent=2) + "\n"
    width = max(len(r.name) for r in rules)
    lines = []
    for r in rules:
        fix = {"safe": "[*]", "unsafe": "[*?]", "sometimes": "[*?]"}.get(r.fix_safety, "   ")
        opt = "" if r.default_enabled else " (opt-in)"
        lines.append(f"{r.code}  {r.name:<{width}}  {fix:<4} {r.summary}{opt}")
    lines += ["", "[*] safe fix, [*?] fix that is unsafe in some or all cases.", OPT_IN_LEGEND]
    return "\n".join(lines) + "\n"


def index_markdown() -> str:
    lines = [
        "# Rules\n",
        "Generated by `python -m ckptlint.output.rule_docs` from each rule's own metadata; do not edit.\n",
        "`[*]` safe fix, `[*?]` fix that is unsafe in some or all cases.",
        OPT_IN_LEGEND + "\n",
        "| code | name | fix | summary |",
        "|---|---|---|---|",
    ]
    for r in all_rules().values():
        fix = {"safe": "[*]", "unsafe": "[*?]", "sometimes": "[*?]"}.get(r.fix_safety, "")
        opt = " (opt-in)" if not r.default_enabled else ""
        lines.append(f"| [{r.code}]({r.code}.md) | {r.name} | {fix} | {r.summary.replace('|', '&#124;')}{opt} |")
    return "\n".join(lines) + "\n"


def generated_pages() -> dict:
    pages = {f"{code}.md": rule_markdown(rule) for code, rule in all_rules().items()}
    pages["index.md"] = index_markdown()
    return pages


def write(docs_dir: Path) -> None:
    target = docs_dir / "rules"
    target.mkdir(parents=True, exist_ok=True)
    pages = generated_pages()
    for old in target.glob("*.md"):
        if old.name not in pages:
            old.unlink()
    for name, text in pages.items():
        (target / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "docs")
