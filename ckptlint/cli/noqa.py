"""`ckptlint check --add-noqa`: suppress every current finding in place (ruff's workflow for
adopting a linter on a big code base: suppress today, fix over time)."""

from __future__ import annotations

import sys

from ckptlint.engine.noqa_edit import add_noqa
from ckptlint.output.text import display_path
from ckptlint.workspace.run import workspace_for
from ckptlint.workspace.write import write_atomic


def run_add_noqa(options, cwd) -> int:
    workspace = workspace_for(options, cwd)
    found = workspace.discover(options.paths or ["."], force_exclude=options.force_exclude)
    total = 0
    for path in found.files:
        settings = workspace.settings_for(path)
        result = workspace.lint_file(path, settings, settings.enabled_codes(), module_name=workspace.module_name(path))
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
