"""docs/rules/ is generated from the rules themselves; README shows real output."""

from __future__ import annotations

import re

from ckptlint.output.rule_docs import generated_pages
from tests.helpers import ROOT, run_cli


def test_generated_rule_pages_are_fresh():
    pages = generated_pages()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "docs/rules").glob("*.md")}
    stale = sorted(n for n in pages if on_disk.get(n) != pages[n])
    extra = sorted(set(on_disk) - set(pages))
    assert not stale and not extra, (
        f"docs/rules is stale ({stale}, extra {extra}); run `python -m ckptlint.output.rule_docs`"
    )


def test_every_rule_doc_has_the_ruff_sections():
    from ckptlint.rules import all_rules
    from ckptlint.rules._base import SECTIONS

    for rule in all_rules().values():
        text = rule.doc_text()
        for section in SECTIONS:
            assert f"## {section}" in text, f"{rule.code} lacks '## {section}'"


def test_readme_opens_with_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(?:sh|bash|console)\n(.*?)```", text, re.S)
    assert "ckptlint" in blocks[0] and "examples" in blocks[0]
    assert "pytest" in blocks[1]
    assert "pytest" in (ROOT / ".ci/run").read_text()


def test_readme_example_output_is_what_ckptlint_prints():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = re.search(r"<!-- example-output -->\n```text\n(.*?)```", text, re.S).group(1)
    proc = run_cli("check", "examples", cwd=ROOT)
    assert proc.stdout == shown, "README's example output is stale: run `python tools/update_readme.py`"


def test_examples_that_differ_only_in_config_show_what_differs():
    """Two must-fire examples with the same code (under different settings) must show the
    message each gets, or a reader of `ckptlint rule` sees the same example twice."""
    from ckptlint.rules import all_rules

    for rule in all_rules().values():
        by_source = {}
        for ex in rule.invalid:
            by_source.setdefault(ex.source, []).append(ex)
        for same in by_source.values():
            if len(same) < 2:
                continue
            # what ckptlint does with it, as the page shows it: the message or the fix
            shown = [(ex.message, ex.help, ex.fixed_source) for ex in same]
            assert len(set(shown)) == len(same), f"{rule.code}: identical examples; give each its `message`"
            page = run_cli("rule", rule.code).stdout
            assert all(ex.message in page for ex in same if ex.message)
