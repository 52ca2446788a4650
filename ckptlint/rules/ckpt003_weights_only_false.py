from ckptlint.analysis.calls import find_arg, is_literal
from ckptlint.diagnostic import UNSAFE
from ckptlint.rules._base import Invalid, Rule, Valid
from ckptlint.rules._shared import needs_more_than_weights


class WeightsOnlyFalse(Rule):
    code = "CKPT003"
    name = "weights-only-false"
    summary = "`torch.load(..., weights_only=False)`: arbitrary code execution from the file"
    fix_safety = "unsafe"
    fix_title = "Load with `weights_only=True` (allowing the data types the file needs)"
    fix_availability = "sometimes"
    security_severity = "9.8"
    requires_text = ("weights_only",)
    qualnames = ("torch.load",)
    docs = """
    ## What it does
    Checks for `torch.load` calls that pass `weights_only=False` written out.

    ## Why is this bad?
    `weights_only=False` unpickles whatever the file holds: a checkpoint from a colleague, a
    model hub or a cache can run any code on the machine that loads it. Most checkpoints need
    only tensors and containers, which `weights_only=True` loads. The few extra classes a
    checkpoint needs (a config dataclass, a numpy scalar) can be allowed one by one.

    ## Example
    ```python
    import torch

    ckpt = torch.load("ckpt.pt", weights_only=False)
    ```

    ## Use instead
    ```python
    import torch
    from myproj.config import TrainConfig

    with torch.serialization.safe_globals([TrainConfig]):
        ckpt = torch.load("ckpt.pt", weights_only=True)
    ```
    or call `torch.serialization.add_safe_globals([TrainConfig])` once at start-up.

    When the code shows the file holds a module or another pickled object (what it loads is
    used as a module, its attributes are read, or the path is saved as a whole model
    elsewhere in the project), the message says so, and says what will work: re-save the
    file as a state dict (at the save site, when it is known), or allow its classes.

    ## Fix safety
    Usually no fix: which classes a checkpoint may hold is a decision only its owner can make.
    When the load names its file and the file is in the project (or declared under
    `[[tool.ckptlint.checkpoints]]`), ckptlint reads it without running it: if it holds only
    tensors, plain containers and reviewed data types, an unsafe fix writes
    `weights_only=True`, inside `with torch.serialization.safe_globals([...]):` with exactly
    the data types that file needs; if it holds anything that runs code, there is no fix and
    the message says what it calls. Unsafe: the file may change after the fix.
    """
    valid = (
        Valid("import torch\ntorch.load('m.pt', weights_only=True)\n"),
        Valid("import torch\ntorch.load('m.pt', weights_only=trusted)\n"),
        Valid("import pickle\npickle.load(f)\n"),
        Valid("def load(p, weights_only=False):\n    return p\n\nload('x', weights_only=False)\n"),
    )
    invalid = (
        Invalid("import torch\nckpt = torch.load('c.pt', weights_only=False)\n", help_contains="safe_globals"),
        Invalid("from torch import load\nckpt = load('c.pt', map_location='cpu', weights_only=False)\n"),
        Invalid(
            "import torch\nimport torch.nn as nn\n\n\nclass Net(nn.Module):\n    pass\n\n\n"
            "def export():\n    torch.save(Net(), 'detector.pt')\n\n"
            "def serve():\n    net = torch.load('detector.pt', weights_only=False)\n    return net\n",
            help_contains="`detector.pt` is saved as a whole model at example.py:10, which `weights_only=True` "
                             "refuses: re-save it as a state dict at example.py:10",
        ),
    )

    def check(self, ctx):
        from ckptlint.rules._checkpoint_file import known_checkpoint

        for call in ctx.calls_to("torch.load"):
            arg = find_arg(call, "weights_only")
            if arg is not None and hasattr(arg, "value") and is_literal(arg.value, "False"):
                known = known_checkpoint(ctx, call)
                if known is not None and known.readable:
                    from ckptlint.rules._known_file import advice

                    said, edits = advice(ctx, call, known, ctx.replace(arg.value, "True"))
                    ctx.report(call, HEADLINE, edits or (), UNSAFE, help=_sentence(said))
                    continue
                refused = needs_more_than_weights(ctx, call)
                ctx.report(
                    call,
                    HEADLINE,
                    help=(_sentence(f"here {refused}") if refused else
                          "Load with `weights_only=True` and allow the classes the checkpoint needs with "
                          "`torch.serialization.add_safe_globals([...])` or "
                          "`with torch.serialization.safe_globals([...]):`"),
                )


HEADLINE = "`torch.load(..., weights_only=False)` runs any code the file holds"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]
