from ckptlint.analysis.calls import find_arg
from ckptlint.diagnostic import UNSAFE
from ckptlint.rules._base import Invalid, Rule, Valid
from ckptlint.rules._shared import weights_only_default


class LoadWithoutWeightsOnly(Rule):
    code = "CKPT002"
    name = "load-without-weights-only"
    summary = "`torch.load` without `weights_only=`"
    fix_safety = "unsafe"
    fix_title = "Add `weights_only=True`"
    security_severity = "8.8"
    triggers = ("load",)
    qualnames = ("torch.load",)
    docs = """
    ## What it does
    Checks for calls to `torch.load` that do not pass `weights_only=`.

    ## Why is this bad?
    `torch.load` unpickles the file. With `weights_only=False` a checkpoint can run any code
    on the machine that loads it. Before torch 2.6 an omitted `weights_only` meant `False`;
    from 2.6 it means `True`, unless the environment sets `TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`.
    Code that omits it is unsafe on older torch and changes behaviour with the version and
    the environment. The message says what it means on the torch range your project supports
    (`torch-version` in `[tool.ckptlint]`, or the `torch` requirement in `[project]`).

    ## Example
    ```python
    import torch

    state = torch.load("model.pt")
    ```

    ## Use instead
    ```python
    import torch

    state = torch.load("model.pt", weights_only=True)
    ```

    ## Fix safety
    Unsafe: a file that holds more than tensors and plain containers (a pickled model, custom
    classes) no longer loads with `weights_only=True`; allow such classes with
    `torch.serialization.add_safe_globals` or re-save the file as a state dict.
    """
    valid = (
        Valid("import torch\ntorch.load('m.pt', weights_only=True)\n"),
        Valid("import torch\ntorch.load('m.pt', weights_only=flag)\n"),
        Valid("import torch\nopts = {'weights_only': True}\ntorch.load('m.pt', **opts)\n"),
        Valid("import torch.jit\ntorch.jit.load('m.pt')\n"),
        Valid("from torch.utils.cpp_extension import load\nload(name='ext', sources=['a.cpp'])\n"),
        Valid("def load(p):\n    return p\n\nload('m.pt')\n"),
        Valid("import json\njson.load(open('cfg.json'))\n"),
        Valid("def f(torch):\n    return torch.load('m.pt')\n"),
        Valid("import numpy as np\nnp.load('a.npy')\n"),
    )
    invalid = (
        Invalid(
            "import torch\nsd = torch.load('m.pt')\n",
            "import torch\nsd = torch.load('m.pt', weights_only=True)\n",
        ),
        Invalid(
            "import torch as T\nsd = T.load(path, map_location='cpu')\n",
            "import torch as T\nsd = T.load(path, map_location='cpu', weights_only=True)\n",
        ),
        Invalid(
            "from torch import load as L\nsd = L(path)\n",
            "from torch import load as L\nsd = L(path, weights_only=True)\n",
        ),
        Invalid(
            "import torch.serialization\nsd = torch.serialization.load(path)\n",
            "import torch.serialization\nsd = torch.serialization.load(path, weights_only=True)\n",
        ),
        Invalid(
            "import torch\nsd = torch.load(\n    path,\n    map_location='cpu',\n)\n",
            "import torch\nsd = torch.load(\n    path,\n    map_location='cpu',\n    weights_only=True,\n)\n",
        ),
        Invalid(
            "import torch\nsd = torch.load(\n    path,  # the best epoch\n    map_location='cpu'  # on any host\n)\n",
            "import torch\nsd = torch.load(\n    path,  # the best epoch\n    map_location='cpu',\n    weights_only=True  # on any host\n)\n",
        ),
        Invalid(
            "try:\n    import torch\nexcept ImportError:\n    torch = None\n\ndef f(p):\n    return torch.load(p)\n",
            "try:\n    import torch\nexcept ImportError:\n    torch = None\n\ndef f(p):\n    return torch.load(p, weights_only=True)\n",
        ),
        Invalid(
            "import torch\nsd = torch.load('m.pt')\n",
            "import torch\nsd = torch.load('m.pt', weights_only=True)\n",
            message_contains="means `weights_only=False`",
            config={"torch-version": "2.1"},
        ),
        Invalid(
            "import torch\nsd = torch.load('m.pt')\n",
            "import torch\nsd = torch.load('m.pt', weights_only=True)\n",
            message_contains="only while `TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD` is unset",
            config={"torch-version": "2.6"},
        ),
    )

    def check(self, ctx):
        for call in ctx.calls_to("torch.load"):
            if find_arg(call, "weights_only") is not None:
                continue  # given, or possibly given through **kwargs
            ctx.report(
                call,
                "`torch.load` without `weights_only=`: " + weights_only_default(ctx.settings)
                + "; pass `weights_only=True`",
                [ctx.add_keyword(call, "weights_only=True")],
                UNSAFE,
            )
