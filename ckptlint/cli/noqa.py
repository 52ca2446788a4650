"""`ckptlint check --add-noqa`: suppress every current finding in place (ruff's workflow for
adopting a linter on a big code base: suppress today, fix over time)."""

from __future__ import annotations

import sys

from ckptlint.workspace.files import module_name_for
from ckptlint.engine.lint import lint_path, write_atomic
from ckptlint.engine.noqa_edit import add_noqa
from ckptlint.output.text import display_path


def run_add_noqa(options, cwd) -> int:
    from ckptlint.workspace.files import discover
    from ckptlint.workspace.run import settings_resolver

    settings_for = settings_resolver(options, cwd)
    found = discover(options.paths or ["."], settings_for, force_exclude=options.force_exclude)
    total = 0
    for path in found.files:
        settings = settings_for(path)
        result = lint_path(path, settings, settings.enabled_codes(), module_name=module_name_for(path))
        if result.source is None or not result.diagnostics:
            continue
        if result.path.endswith(".ipynb"):
            from ckptlint.engine.notebook import add_noqa_notebook

            new, count, skipped = add_noqa_notebook(result.original, result.diagnostics)
            skipped = [f"cell {c}:{r}" for c, r in skipped]
        else:
            new, count, skipped = add_noqa(result.original, result.diagnostics)
        for row in skipped:
            print(f"{display_path(result.path, cwd)}:{row}: cannot add `# noqa` (the line continues "
                  "a string or ends in `\\`); suppress it by hand", file=sys.stderr)
        if count:
            write_atomic(path, result.source.encode(new))
            total += count
    print(f"Added {total} noqa directive{'s' if total != 1 else ''}.", file=sys.stderr)
    return 0
