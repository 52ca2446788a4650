"""An example ckptlint plugin: one rule, with its docs and examples, found through the
`ckptlint.rules` entry point group (see ../pyproject.toml)."""

from ckptlint.rules import Invalid, Rule, Valid


class SaveUnderTmp(Rule):
    code = "EXA001"
    name = "save-under-tmp"
    summary = "`torch.save` to a path under `/tmp`"
    docs_url = "https://example.invalid/ckptlint-example-plugin/EXA001"
    qualnames = ("torch.save",)
    requires_text = ("/tmp/",)
    docs = """
    ## What it does
    Checks for `torch.save(obj, "/tmp/...")`: a checkpoint written under `/tmp`.

    ## Why is this bad?
    Many systems clear `/tmp` on reboot, and a job's `/tmp` is often not shared between the
    nodes that will load the checkpoint.

    ## Example
    ```python
    torch.save(model.state_dict(), "/tmp/model.pt")
    ```

    ## Use instead
    ```python
    torch.save(model.state_dict(), "checkpoints/model.pt")
    ```

    ## Fix safety
    No fix: where checkpoints belong is the project's choice.
    """
    valid = (
        Valid("import torch\ntorch.save(sd, 'checkpoints/model.pt')\n"),
        Valid("def save(x, p):\n    pass\n\nsave(sd, '/tmp/model.pt')\n"),
    )
    invalid = (
        Invalid("import torch\ntorch.save(sd, '/tmp/model.pt')\n", message_contains="/tmp"),
        Invalid("from torch import save\nsave(sd, f'/tmp/{name}.pt')\n"),
    )

    def check(self, ctx):
        for call in ctx.calls_to(*self.qualnames):
            if len(call.args) >= 2 and ctx.code(call.args[1].value).lstrip("rbfRBF").strip("'\"").startswith("/tmp/"):
                ctx.report(call, "checkpoint saved under `/tmp`, which the system may clear and other "
                           "nodes cannot read; save it where the job keeps its outputs")
