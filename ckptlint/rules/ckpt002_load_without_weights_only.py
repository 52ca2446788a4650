from ckptlint.analysis.calls import find_arg
from ckptlint.diagnostic import UNSAFE
from ckptlint.rules._base import Invalid, Rule, Valid
from ckptlint.rules._guards import old_torch_fallback, round_trip
from ckptlint.rules._shared import needs_more_than_weights, weights_only_default, weights_only_risk


class LoadWithoutWeightsOnly(Rule):
    code = "CKPT002"
    name = "load-without-weights-only"
    summary = "`torch.load` without `weights_only=`"
    fix_safety = "unsafe"
    fix_title = "Add `weights_only=True`"
    fix_availability = "sometimes"
    security_severity = "8.8"
    qualnames = ("torch.load",)
    docs = """
    ## What it does
    Checks for calls to `torch.load` that do not pass `weights_only=`. A load of an in-memory
    buffer in a function that also `torch.save`s into one (a broadcast of any object between
    the processes of one job) reads nothing from elsewhere and is left alone.

    Where the project's torch floor is 2.6 or newer, an omitted `weights_only` already means
    `True` on every torch it supports, so the rule does not fire unless
    `explicit-weights-only = true` is set in `[tool.ckptlint]` (for teams that want every load
    to say what it allows, whatever the environment sets).

    ## Why is this bad?
    `torch.load` unpickles the file. With `weights_only=False` a checkpoint can run any code
    on the machine that loads it. Before torch 2.6 an omitted `weights_only` meant `False`;
    from 2.6 it means `True`, unless the environment sets `TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`.
    Code that omits it is unsafe on older torch and changes behaviour with the version and
    the environment. The help says what it means on the torch range your project supports:
    `torch-version` in `[tool.ckptlint]`, else the `torch` requirement of the project (in
    `[project] dependencies` or `[tool.poetry.dependencies]` of pyproject.toml, else
    `install_requires` of setup.cfg or setup.py, else the lowest of its `requirements*.txt`),
    naming the file it comes from.

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

    No fix is offered where the code shows the file holds more: what it loads is used as a
    module (`ckpt["model"].fuse()`, `net.eval()`, `ckpt["model"].parameters()`), or its
    attributes are read (`ckpt["args"].lr`, `ckpt["model"].yaml`, `vars(ckpt["opt"])`), or an
    entry goes to a chainer serializer (numpy arrays), or the same path is saved as a whole
    model elsewhere in the project, or the project saves a dict with the entries this load
    reads and an `nn.Module` among them. The message then names the evidence and what will
    work: re-save the file as a state dict (at the save site, when it is known), or allow its
    classes with `torch.serialization.safe_globals([...])`. Nor where the function returns
    what it loads: its callers decide what the file may hold (a framework's checkpoint loader
    also reads whole training checkpoints), so the message says to pass `weights_only=True`
    where a caller loads plain weights, or to take a `weights_only` parameter. Nor on the
    retry in an `except TypeError:` after a load that passes `weights_only` (the fallback for a
    torch too old for the keyword, where passing it fails again).

    When the load names its file (a literal path, or a constant holding one) and the file is
    in the project (relative to the project root or to the linted file) or declared under
    `[[tool.ckptlint.checkpoints]]`, ckptlint reads it with `ckptlint verify`'s reader (never
    running it) and the file decides: only tensors and plain containers, the fix adds
    `weights_only=True`; reviewed data types (numpy arrays and dtypes, `argparse.Namespace`,
    ...), the fix also puts the load inside `with torch.serialization.safe_globals([...]):`
    naming exactly what that file needs for the numpy installed here (and imports what the
    list names); anything that runs code, no fix, and the message names it: re-save the file.
    The result is cached with the file's size and modification time.
    """
    valid = (
        Valid("import torch\ntorch.load('m.pt', weights_only=True)\n"),
        # from torch 2.6 an omitted `weights_only` means `True`: nothing to say by default
        Valid("import torch\nsd = torch.load('m.pt')\n", config={"torch-version": "2.6"}),
        Valid("import torch\ntorch.load('m.pt', weights_only=flag)\n"),
        Valid("import torch\nopts = {'weights_only': True}\ntorch.load('m.pt', **opts)\n"),
        Valid("import torch.jit\ntorch.jit.load('m.pt')\n"),
        Valid("from torch.utils.cpp_extension import load\nload(name='ext', sources=['a.cpp'])\n"),
        Valid("def load(p):\n    return p\n\nload('m.pt')\n"),
        Valid("import json\njson.load(open('cfg.json'))\n"),
        Valid("def f(torch):\n    return torch.load('m.pt')\n"),
        Valid("import numpy as np\nnp.load('a.npy')\n"),
        Valid(
            # a broadcast of any picklable object between the ranks of one job
            "import io\nimport torch\n\ndef broadcast(obj, src=0):\n    buffer = io.BytesIO()\n"
            "    torch.save(obj, buffer)\n    data = _send(bytearray(buffer.getbuffer()), src)\n"
            "    buffer = io.BytesIO(data)\n    return torch.load(buffer)\n"
        ),
    )
    invalid = (
        Invalid(
            # no torch-version, no torch requirement: the message covers both meanings
            "import torch\nsd = torch.load('m.pt')\n",
            "import torch\nsd = torch.load('m.pt', weights_only=True)\n",
            message="`torch.load` without `weights_only=`: a file can run code on torch < 2.6",
            help="Without it, before torch 2.6 it means `weights_only=False` (a malicious file runs code); "
                 "from 2.6 `True` unless `TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD` is set; pass `weights_only=True`",
        ),
        Invalid(
            "import torch as T\nsd = T.load(path, map_location='cpu')\n",
            "import torch as T\nsd = T.load(path, map_location='cpu', weights_only=True)\n",
        ),
        Invalid(
            # the keyword goes after the parenthesised argument, not inside it
            "import torch\nckpt = torch.load(f, map_location=(torch.device('cpu') if to_cpu else None))\n",
            "import torch\nckpt = torch.load(f, map_location=(torch.device('cpu') if to_cpu else None), weights_only=True)\n",
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
            "try:\n    import torch\nexcept ImportError:\n    torch = None\n\ndef f(m, p):\n    m.load_state_dict(torch.load(p))\n",
            "try:\n    import torch\nexcept ImportError:\n    torch = None\n\ndef f(m, p):\n    m.load_state_dict(torch.load(p, weights_only=True))\n",
        ),
        Invalid(
            # a pickled detection model: its attributes are read, it is fused
            "import torch\n\ndef attempt_load(w, device):\n    ckpt = torch.load(w, map_location='cpu')\n"
            "    model = (ckpt.get('ema') or ckpt['model']).to(device).float()\n"
            "    if not hasattr(model, 'stride'):\n        model.stride = torch.tensor([32.0])\n"
            "    return model.fuse().eval()\n",
            help_contains="its `ema` entry is used as a module (`model.fuse()`, line 8)",
        ),
        Invalid(
            "import torch\nmodel = torch.load(w)['model'].float().fuse()\n",
            help_contains="re-save it as a state dict where it is written, or allow the classes",
        ),
        Invalid(
            # argparse.Namespace in the file: `weights_only=True` refuses it
            "import torch\n\ndef build(path):\n    state = torch.load(path, map_location='cpu')\n"
            "    arch = state['args'].arch\n    return arch, state['model']\n",
            help_contains="its `args` entry is used as a pickled object, not a tensor (`state['args'].arch`",
        ),
        Invalid(
            # a chainer trainer snapshot: its "trainer" entry is numpy arrays
            "import torch\nfrom chainer.serializers import NpzDeserializer\n\n\ndef torch_resume(snapshot_path, trainer):\n"
            "    snapshot_dict = torch.load(snapshot_path, map_location=lambda storage, loc: storage)\n"
            "    NpzDeserializer(snapshot_dict['trainer']).load(trainer)\n",
            help_contains="its `trainer` entry is used as a pickled object",
        ),
        Invalid(
            "import torch\n\nclass Encoder:\n    def __init__(self, path):\n"
            "        self.ckpt = torch.load(path)\n        self.cfg = vars(self.ckpt['cfg'])\n",
        ),
        Invalid(
            # a framework's checkpoint loader: its callers load whole training checkpoints too
            "import torch\n\ndef load_from_local(filename, map_location=None):\n"
            "    checkpoint = torch.load(filename, map_location=map_location)\n    return checkpoint\n",
            help_contains="this function returns what it loads (line 5), so its callers decide",
        ),
        Invalid(
            # the retry for a torch too old for the keyword: passing it there fails again
            "import torch\n\ndef load_state(path, device, weights_only=True):\n    try:\n"
            "        ckpt = torch.load(path, map_location=device, weights_only=weights_only)\n"
            "    except TypeError:\n        ckpt = torch.load(path, map_location=device)\n    return ckpt\n",
            help_contains="retries the load of line 5 on a torch that has no `weights_only` keyword",
        ),
        Invalid(
            "import torch\nsd = torch.load('m.pt')\n",
            "import torch\nsd = torch.load('m.pt', weights_only=True)\n",
            config={"torch-version": "2.1"},
            message="`torch.load` without `weights_only=`: the file can run code on torch 2.1",
            help="Without it, on torch 2.1 (`torch-version` in pyproject.toml) it means `weights_only=False`: "
                 "loading the file runs any code it holds; pass `weights_only=True`",
        ),
        Invalid(
            # the hygiene check, for teams that want every load to say what it allows
            "import torch\nsd = torch.load('m.pt')\n",
            "import torch\nsd = torch.load('m.pt', weights_only=True)\n",
            config={"torch-version": "2.6", "explicit-weights-only": True},
            message="`torch.load` without `weights_only=`: safe only while `TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD` is unset",
            help="Without it, on torch 2.6 (`torch-version` in pyproject.toml) it means `weights_only=True`, "
                 "but only while `TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD` is unset; pass `weights_only=True`",
        ),
    )

    def check(self, ctx):
        from ckptlint.rules._checkpoint_file import known_checkpoint

        floor = getattr(ctx.settings, "torch_version", None)
        if floor is not None and floor >= (2, 6) and not getattr(ctx.settings, "explicit_weights_only", False):
            return  # an omitted `weights_only` already means `True` on every torch the project supports
        for call in ctx.calls_to("torch.load"):
            if find_arg(call, "weights_only") is not None:
                continue  # given, or possibly given through **kwargs
            if round_trip(ctx, call):
                continue  # its own objects, serialised a few lines up: nothing from elsewhere
            said = "`torch.load` without `weights_only=`: " + weights_only_risk(ctx.settings)
            meaning = "Without it, " + weights_only_default(ctx.settings)
            fallback = old_torch_fallback(ctx, call)
            if fallback is not None:
                ctx.report(call, said, help=f"{meaning}; this retries the load of line {fallback} on a torch that "
                           "has no `weights_only` keyword (`except TypeError`), where passing it fails the same "
                           "way: drop the retry once the project needs torch 1.13 or newer")
                continue
            known = known_checkpoint(ctx, call)
            if known is not None and known.readable:
                from ckptlint.rules._known_file import advice

                tail, edits = advice(ctx, call, known, ctx.add_keyword(call, "weights_only=True"))
                ctx.report(call, said, edits or (), UNSAFE, help=f"{meaning}; {tail}")
                continue
            refused = needs_more_than_weights(ctx, call)
            if refused is not None:
                ctx.report(call, said, help=f"{meaning}; here {refused}")
                continue
            ctx.report(call, said, [ctx.add_keyword(call, "weights_only=True")], UNSAFE,
                       help=f"{meaning}; pass `weights_only=True`")
