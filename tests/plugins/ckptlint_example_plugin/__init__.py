"""An example ckptlint plugin: one rule, with its docs and examples, found through the
`ckptlint.rules` entry point group (see ../pyproject.toml)."""

from ckptlint.rules import Invalid, Option, Rule, Valid


class SaveUnderTmp(Rule):
    code = "EXA001"
    name = "save-under-tmp"
    summary = "`torch.save` to a path under `/tmp`"
    docs_url = "https://example.invalid/ckptlint-example-plugin/EXA001"
    qualnames = ("torch.save",)
    requires_text = ("/tmp/",)
    # [tool.ckptlint.rule-options.EXA001] in a project's pyproject.toml
    options = {
        "allowed-prefixes": Option([], "Folders under `/tmp` where the project keeps checkpoints on "
                                       "purpose (a node-local cache it copies out of): saves there are fine."),
    }
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
        Valid("import torch\ntorch.save(sd, '/tmp/cache/model.pt')\n",
              config={"rule-options": {"EXA001": {"allowed-prefixes": ["/tmp/cache/"]}}}),
    )
    invalid = (
        Invalid("import torch\ntorch.save(sd, '/tmp/model.pt')\n", message_contains="/tmp"),
        Invalid("from torch import save\nsave(sd, f'/tmp/{name}.pt')\n"),
        Invalid("import torch\ntorch.save(sd, '/tmp/model.pt')\n",
                config={"rule-options": {"EXA001": {"allowed-prefixes": ["/tmp/cache/"]}}}),
    )

    def check(self, ctx):
        allowed = tuple(ctx.options["allowed-prefixes"])
        for call in ctx.calls_to(*self.qualnames):
            path = ctx.code(call.args[1].value).lstrip("rbfRBF").strip("'\"") if len(call.args) >= 2 else ""
            if path.startswith("/tmp/") and not path.startswith(allowed):
                ctx.report(call, "checkpoint saved under `/tmp`, which the system may clear and other "
                           "nodes cannot read; save it where the job keeps its outputs")
