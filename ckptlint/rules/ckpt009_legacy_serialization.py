from ckptlint.analysis.calls import find_arg, is_literal
from ckptlint.diagnostic import SAFE
from ckptlint.rules._base import Invalid, Rule, Valid


class LegacySerialization(Rule):
    code = "CKPT009"
    name = "legacy-serialization"
    summary = "`torch.save(..., _use_new_zipfile_serialization=False)`: legacy format"
    fix_safety = "safe"
    fix_title = "Remove `_use_new_zipfile_serialization=False`"
    requires_text = ("_use_new_zipfile_serialization",)
    qualnames = ("torch.save",)
    docs = """
    ## What it does
    Checks for `torch.save` calls that pass `_use_new_zipfile_serialization=False`.

    ## Why is this bad?
    The legacy (pre-1.6) format cannot be memory-mapped (`torch.load(mmap=True)`), is not
    covered by the weights-only loader's guarantees the way the zip format is, cannot be
    inspected without unpickling, and is kept only for reading old files.

    ## Example
    ```python
    torch.save(model.state_dict(), "model.pt", _use_new_zipfile_serialization=False)
    ```

    ## Use instead
    ```python
    torch.save(model.state_dict(), "model.pt")
    ```

    ## Fix safety
    Safe: every torch since 1.6 reads the zip format, and `torch.load` reads both.
    """
    valid = (
        Valid("import torch\ntorch.save(sd, 'm.pt')\n"),
        Valid("import torch\ntorch.save(sd, 'm.pt', _use_new_zipfile_serialization=True)\n"),
        Valid("def save(a, b, _use_new_zipfile_serialization=False):\n    pass\n\nsave(1, 2, _use_new_zipfile_serialization=False)\n"),
    )
    invalid = (
        Invalid(
            "import torch\ntorch.save(sd, 'm.pt', _use_new_zipfile_serialization=False)\n",
            "import torch\ntorch.save(sd, 'm.pt')\n",
        ),
        Invalid(
            "import torch\ntorch.save(sd, (out / 'm.pt'), _use_new_zipfile_serialization=(False))\n",
            "import torch\ntorch.save(sd, (out / 'm.pt'))\n",
        ),
        Invalid(
            "import torch\ntorch.save(sd, 'm.pt', _use_new_zipfile_serialization=False, pickle_protocol=4)\n",
            "import torch\ntorch.save(sd, 'm.pt', pickle_protocol=4)\n",
        ),
        Invalid(
            "import torch\ntorch.save(\n    sd,\n    'm.pt',\n    _use_new_zipfile_serialization=False,\n)\n",
            "import torch\ntorch.save(\n    sd,\n    'm.pt',\n)\n",
        ),
    )

    def check(self, ctx):
        for call in ctx.calls_to("torch.save"):
            # a private keyword: only ever passed by name (and only the name is a trigger)
            arg = find_arg(call, "_use_new_zipfile_serialization")
            if arg is None or not hasattr(arg, "value") or not is_literal(arg.value, "False"):
                continue
            edits = [ctx.remove_arg(call, arg)]
            ctx.report(
                call,
                "`torch.save(..., _use_new_zipfile_serialization=False)` writes the legacy format",
                edits,
                SAFE,
                help="The legacy format has no mmap and cannot be inspected without unpickling; "
                     "drop the keyword",
            )
