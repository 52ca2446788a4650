from ckptlint.rules._base import Invalid, Rule, Valid


class UnusedNoqa(Rule):
    """Found by the linter after suppression (it needs every other rule's findings), so
    `check` itself reports nothing; see ckptlint.engine.noqa_edit.unused_noqa."""

    code = "CKPT900"
    name = "unused-noqa"
    summary = "`# noqa` directive naming a ckptlint code that suppresses nothing"
    fix_safety = "safe"
    fix_title = "Remove unused `noqa` directive"
    default_enabled = False
    requires_text = ("noqa", "NOQA", "Noqa")
    docs = """
    ## What it does
    Checks for `# noqa: CKPT...` comments naming codes that suppress no finding on their
    line, after the code they silenced was fixed or moved. Enable it with
    `--extend-select CKPT900` (or `extend-select = ["CKPT900"]`). Codes of other tools
    (`# noqa: E501`) and blanket `# noqa` comments are left alone: they may be for flake8 or
    ruff. A code whose rule is not enabled is reported as "non-enabled".

    ## Why is this bad?
    A stale suppression hides the next real finding on that line, and a team adopting
    ckptlint with `--add-noqa` needs to see which suppressions its fixes made obsolete.

    ## Example
    ```python
    import torch

    sd = torch.load("m.pt", map_location="cpu", weights_only=True)  # noqa: CKPT002
    ```

    ## Use instead
    ```python
    import torch

    sd = torch.load("m.pt", map_location="cpu", weights_only=True)
    ```

    ## Fix safety
    Safe: only ckptlint's own unused codes are removed, and the whole comment only when no
    other code is left in it.
    """
    valid = (
        Valid("x = 1  # noqa: E501\n"),
        Valid("x = 1  # noqa\n"),
        Valid("# ckptlint: noqa: CKPT002\nx = 1\n"),
    )
    invalid = (
        Invalid(
            "import torch\nsd = torch.load('m.pt', weights_only=True)  # noqa: CKPT002\n",
            "import torch\nsd = torch.load('m.pt', weights_only=True)\n",
            message_contains="CKPT002",
        ),
        Invalid(
            "x = 1  # noqa: E501, CKPT004\n",
            "x = 1  # noqa: E501\n",
        ),
    )
