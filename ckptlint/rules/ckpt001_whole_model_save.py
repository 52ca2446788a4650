from __future__ import annotations

import libcst as cst

from ckptlint.analysis.calls import POSITIONAL, find_arg
from ckptlint.analysis.kinds import LOADED, MODULE, UNKNOWN
from ckptlint.diagnostic import UNSAFE
from ckptlint.rules._base import Invalid, Rule, Valid
from ckptlint.rules._guards import writes_to_buffer
from ckptlint.rules._pairing import load_sites, module_readers, site_of, site_path, where
from ckptlint.rules._shared import held_by, quoted_code
from ckptlint.analysis.contents import MODELISH_KEY
from ckptlint.rules._saves import STATEY, dict_key, heuristic_note, saved_object, saved_values, with_suffix

_NET = "import torch\nimport torch.nn as nn\n\n\nclass Net(nn.Module):\n    pass\n\n\n"
_WORLD = (
    "import torch\nimport torch.nn as nn\nfrom dataclasses import dataclass\n\n\nclass Policy(nn.Module):\n    pass\n\n\n"
    "@dataclass\nclass World:\n    algorithm: Policy\n    steps: int = 0\n\n\n"
)


class WholeModelSave(Rule):
    code = "CKPT001"
    name = "whole-model-save"
    summary = "`torch.save` of a whole `nn.Module` instead of its state dict"
    fix_safety = "unsafe"
    fix_title = "Save `.state_dict()` instead"
    fix_availability = "sometimes"
    # it reports only on these calls, so files without them skip LibCST (triage.py)
    qualnames = ("torch.save",)
    docs = """
    ## What it does
    Checks for `torch.save(obj, f)` where `obj` is an `nn.Module` instance (also as a value
    of a dict or list literal that is saved), rather than its state dict.

    Whether `obj` is a module is decided by evidence, strongest first: it is bound to a call
    of a class that subclasses `nn.Module` (a class of your project, found through the
    project-wide class index, or a known library constructor such as `torch.nn.*`,
    `torchvision.models.*`, `timm.create_model` or a `transformers` `*.from_pretrained`); it
    is the `.module` of a wrapper or unwrapped by `accelerator.unwrap_model` /
    `getattr(m, "module", m)`; it is the attribute of an instance of a project class whose
    methods set it to a module (`ema.ema`, where `ModelEMA.__init__` sets
    `self.ema = deepcopy(de_parallel(model)).eval()`); it is a parameter annotated with a
    module type; or its name
    looks like a model (`model`, `net`, `*_model`, ... configurable with `model-names`, and
    switched off with `model-names = false`) and nothing says otherwise. The message says
    which evidence fired. Saving `x.state_dict()`, a dict of state dicts, tensors or numbers,
    a tensor, or the result of a call returning one never fires. Saving a
    `DataParallel`/`DistributedDataParallel` wrapper is CKPT005.

    A save with several module entries (`{"model": ..., "ema": ...}`) is one finding. Saving a
    checkpoint that was loaded and whose entry the code uses as a module
    (`x = torch.load(f)`, `x["model"].half()`, `torch.save(x, s)`) fires too. When the
    project loads the same path elsewhere, the message names those readers.

    ## Why is this bad?
    A whole-model save pickles the object: loading it needs `weights_only=False` (so the file
    can run code), and it only works while the class keeps the same import path and
    attributes. Renaming a module or moving a file breaks every old checkpoint.

    ## Example
    ```python
    model = Net()
    torch.save(model, "model.pt")
    ```

    ## Use instead
    ```python
    model = Net()
    torch.save(model.state_dict(), "model.pt")
    ```

    ## Fix safety
    Unsafe: the file's content changes from a module to a state dict, so whatever loads it
    must build the model and call `load_state_dict`.

    The fix turns every module entry of the save into its state dict at once. It is not
    offered when another entry may hold a module the analysis cannot tell (an unknown value
    under a key like `ema` or `model`): fixing only some entries would break every reader
    while the file still needs `weights_only=False`. A re-saved loaded checkpoint has no fix.
    """
    valid = (
        Valid(_WORLD + "def save(world: World):\n    torch.save(world.steps, 'steps.pt')\n"),
        Valid(_NET + "model = Net()\ntorch.save(model.state_dict(), 'm.pt')\n"),
        Valid(
            _NET + "model = Net()\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
            "torch.save({'model': model.state_dict(), 'optimizer': opt.state_dict(), 'epoch': 3}, 'ckpt.pt')\n"
        ),
        Valid(_NET + "model = nn.DataParallel(Net())\ntorch.save(model.module.state_dict(), 'm.pt')\n"),
        Valid("import copy\nimport torch\n\ntorch.save(copy.deepcopy(model).state_dict(), 'm.pt')\n"),
        Valid(
            "import copy\nimport torch\n\nema_model = copy.deepcopy(model)\nema_model.eval()\n"
            "torch.save(ema_model.state_dict(), 'ema.pt')\n"
        ),
        Valid("import torch\n\nembeddings = torch.randn(10, 3)\ntorch.save(embeddings, 'emb.pt')\n"),
        Valid("import torch\n\ntorch.save(torch.zeros(3), 'z.pt')\n"),
        Valid("import torch\n\nmodel = model.state_dict()\ntorch.save(model, 'm.pt')\n"),
        Valid("import torch\n\nmodel = {'w': w, 'b': b}\ntorch.save(model, 'm.pt')\n"),
        Valid("import torch\n\ntorch.save(accelerator.get_state_dict(model), 'm.pt')\n"),
        Valid("trainer.fit(model)\ntrainer.save_checkpoint('last.ckpt')\n"),
        Valid("import torch\n\n\nclass Model:\n    pass\n\n\nmodel = Model()\ntorch.save(model, 'm.pt')\n"),
        Valid("import torch\n\ntorch.save(model, 'm.pt')\n", config={"model-names": False}),
        Valid("import torch\n\ntorch.save(features, 'f.pt')\n"),
        Valid("import torch\n\nmodel = torch.load('a.pt', weights_only=True)\ntorch.save(model, 'b.pt')\n"),
        Valid(
            "import torch\n\nto_save = model.module.state_dict() if hasattr(model, 'module') else model.state_dict()\n"
            "torch.save(to_save, 'm.pt')\n"
        ),
        Valid("import torch\n\ntorch.save({k: v.cpu() for k, v in model.state_dict().items()}, 'm.pt')\n"),
        Valid("import torch\n\ndef save(model, path):\n    torch.save(model.state_dict(), path)\n"),
        Valid("import torch\n\ntorch.save({'model': net.state_dict(), 'step': step}, 'm.pt')\n"),
        Valid("import pickle\n\npickle.dump(model, f)\n"),
        Valid("import io\nimport torch\n\ndef model_bytes(model):\n    buf = io.BytesIO()\n    torch.save(model, buf)\n    return buf\n"),
        Valid(
            "import torch\n\ndef average(paths, out):\n    avg = torch.load(paths[0], map_location='cpu')\n"
            "    for k in avg['model']:\n        avg['model'][k] /= len(paths)\n    torch.save(avg, out)\n"
        ),
        Valid(
            _NET + "def save(path, ema_sd):\n    model = Net()\n"
            "    torch.save({'model': model.state_dict(), 'ema': ema_sd}, path)\n"
        ),
    )
    invalid = (
        Invalid(
            # a dataclass field annotated with a module class holds a module
            _WORLD + "def save(world: World):\n    torch.save(world.algorithm, 'policy.pt')\n",
            _WORLD + "def save(world: World):\n    torch.save(world.algorithm.state_dict(), 'policy.pt')\n",
            help_contains="`world.algorithm` is an nn.Module (`World.algorithm`, annotated with an nn.Module class, bound at line 16)",
        ),
        Invalid(
            _WORLD + "world = World(Policy())\ntorch.save({'algo': world.algorithm, 'steps': world.steps}, 'w.pt')\n",
            _WORLD + "world = World(Policy())\ntorch.save({'algo': world.algorithm.state_dict(), 'steps': world.steps}, 'w.pt')\n",
        ),
        Invalid(
            _NET + "model = Net()\ntorch.save(model, 'm.pt')\n",
            _NET + "model = Net()\ntorch.save(model.state_dict(), 'm.pt')\n",
            help_contains="a call of `Net`, bound at line 9",
        ),
        Invalid(
            "import torch\nimport torchvision\n\nresnet = torchvision.models.resnet18()\ntorch.save(resnet, 'r.pt')\n",
            "import torch\nimport torchvision\n\nresnet = torchvision.models.resnet18()\ntorch.save(resnet.state_dict(), 'r.pt')\n",
        ),
        Invalid(
            _NET + "class Trainer:\n    def __init__(self):\n        self.model = Net()\n\n"
            "    def save(self, path):\n        torch.save(self.model, path)\n",
            _NET + "class Trainer:\n    def __init__(self):\n        self.model = Net()\n\n"
            "    def save(self, path):\n        torch.save(self.model.state_dict(), path)\n",
        ),
        Invalid(
            _NET + "model = Net().to('cuda')\ntorch.save({'model': model, 'epoch': 3}, 'ckpt.pt')\n",
            _NET + "model = Net().to('cuda')\ntorch.save({'model': model.state_dict(), 'epoch': 3}, 'ckpt.pt')\n",
        ),
        Invalid(
            "import torch\nfrom torch import nn\n\ndef save(m: nn.Module, path):\n    torch.save(m, path)\n",
            "import torch\nfrom torch import nn\n\ndef save(m: nn.Module, path):\n    torch.save(m.state_dict(), path)\n",
            help_contains="annotated `nn.Module`",
        ),
        Invalid(
            "import torch\n\ndef save(model, path):\n    torch.save(model, path)\n",
            "import torch\n\ndef save(model, path):\n    torch.save(model.state_dict(), path)\n",
            help_contains="by its name only",
        ),
        Invalid(
            "import timm\nimport torch\n\nnet = timm.create_model('resnet50')\ntorch.save(net, 'n.pt')\n",
            "import timm\nimport torch\n\nnet = timm.create_model('resnet50')\ntorch.save(net.state_dict(), 'n.pt')\n",
        ),
        Invalid(
            "import torch\nfrom transformers import AutoModel\n\nbert = AutoModel.from_pretrained('bert-base-uncased')\n"
            "torch.save(bert, 'bert.pt')\n",
            "import torch\nfrom transformers import AutoModel\n\nbert = AutoModel.from_pretrained('bert-base-uncased')\n"
            "torch.save(bert.state_dict(), 'bert.pt')\n",
        ),
        Invalid(
            _NET + "from torch.nn.parallel import DistributedDataParallel as DDP\n\nmodel = DDP(Net())\n"
            "torch.save(model.module, 'm.pt')\n",
            _NET + "from torch.nn.parallel import DistributedDataParallel as DDP\n\nmodel = DDP(Net())\n"
            "torch.save(model.module.state_dict(), 'm.pt')\n",
        ),
        Invalid(
            "import torch\n\nunwrapped = accelerator.unwrap_model(model)\ntorch.save(unwrapped, 'm.pt')\n",
            "import torch\n\nunwrapped = accelerator.unwrap_model(model)\ntorch.save(unwrapped.state_dict(), 'm.pt')\n",
        ),
        Invalid(
            "import torch\n\ntorch.save(getattr(model, 'module', model), 'm.pt')\n",
            "import torch\n\ntorch.save(getattr(model, 'module', model).state_dict(), 'm.pt')\n",
        ),
        Invalid(
            "import torch\n\ntorch.save(clf, 'c.pt')\n",
            "import torch\n\ntorch.save(clf.state_dict(), 'c.pt')\n",
            config={"model-names": ["clf"]},
        ),
        Invalid(
            _NET + "def save(path):\n    model = Net()\n    ckpt = {'epoch': 1, 'model': model}\n    torch.save(ckpt, path)\n",
            _NET + "def save(path):\n    model = Net()\n    ckpt = {'epoch': 1, 'model': model.state_dict()}\n    torch.save(ckpt, path)\n",
            help_contains="inside the saved `ckpt`",
        ),
        Invalid(
            # an EMA helper class (not a module) holding the averaged copy: one finding, one
            # fix for both module entries
            "from copy import deepcopy\n\nimport torch\n\n\nclass ModelEMA:\n    def __init__(self, model):\n"
            "        self.ema = deepcopy(de_parallel(model)).eval()\n        self.updates = 0\n\n\n"
            "def train(model, epochs, last):\n    ema = ModelEMA(model)\n    for epoch in range(epochs):\n"
            "        ckpt = {'epoch': epoch, 'model': deepcopy(de_parallel(model)).half(),\n"
            "                'ema': deepcopy(ema.ema).half(), 'updates': ema.updates}\n"
            "        torch.save(ckpt, last)\n",
            "from copy import deepcopy\n\nimport torch\n\n\nclass ModelEMA:\n    def __init__(self, model):\n"
            "        self.ema = deepcopy(de_parallel(model)).eval()\n        self.updates = 0\n\n\n"
            "def train(model, epochs, last):\n    ema = ModelEMA(model)\n    for epoch in range(epochs):\n"
            "        ckpt = {'epoch': epoch, 'model': deepcopy(de_parallel(model)).half().state_dict(),\n"
            "                'ema': deepcopy(ema.ema).half().state_dict(), 'updates': ema.updates}\n"
            "        torch.save(ckpt, last)\n",
            help_contains="`ModelEMA.ema`, set to an nn.Module",
        ),
        Invalid(
            # the EMA copy is not known to be a module: fixing only `model` would leave a
            # pickled module in the file
            _NET + "def save(path, ema_copy):\n    model = Net()\n"
            "    torch.save({'model': model, 'ema': ema_copy, 'epoch': 3}, path)\n",
            help_contains="no fix: `ema` (`ema_copy`) may hold a module too",
        ),
        Invalid(
            # a trained checkpoint stripped of its optimizer and saved again
            "import torch\n\ndef strip_optimizer(f, s=''):\n    x = torch.load(f, map_location='cpu')\n"
            "    x['optimizer'] = None\n    x['model'].half()\n    for p in x['model'].parameters():\n"
            "        p.requires_grad = False\n    torch.save(x, s or f)\n",
            help_contains="`x` is the checkpoint loaded at line 4, and its `model` entry is used as a module",
        ),
        Invalid(
            "import torch\nimport torch.nn as nn\n\nhead = nn.Linear(4, 2)\ntorch.save([head], 'h.pt')\n",
            "import torch\nimport torch.nn as nn\n\nhead = nn.Linear(4, 2)\ntorch.save([head.state_dict()], 'h.pt')\n",
        ),
    )

    @staticmethod
    def _to_buffer(ctx, call) -> bool:
        f = find_arg(call, "f", POSITIONAL["torch.save"])
        return isinstance(f, cst.Arg) and writes_to_buffer(ctx, f.value)

    def check(self, ctx):
        for call in ctx.calls_to("torch.save"):
            obj = saved_object(call)
            if obj is None:
                continue
            values = saved_values(ctx, obj)
            found = [(part, value) for part, value in values if value.kind == MODULE
                     and not (value.evidence == "name-heuristic" and self._to_buffer(ctx, call))]
            if found:
                self._report(ctx, call, obj, found, values)
            else:
                self._resaved(ctx, call, values)

    def _report(self, ctx, call, obj, found, values) -> None:
        """One finding per save, whose fix turns every module entry into its state dict, or
        none when another entry may hold a module the analysis cannot see (a fix that left it
        would break the file's readers and still need `weights_only=False`)."""
        inside = "" if found[0][0] is obj else " inside the saved " + (
            f"`{ctx.code(obj)}`" if isinstance(obj, cst.Name) else "container")
        what = "; ".join(value.describe(f"`{ctx.code(part)}`") for part, value in found)
        fixed = [with_suffix(ctx, part, ".state_dict()") for part, _ in found]
        maybe = [] if inside == "" else [
            (key, part) for part, value in values
            if value.kind == UNKNOWN and (key := dict_key(ctx, part)) and MODELISH_KEY.search(key)
            and not STATEY.search(ctx.code(part))]
        notes = [heuristic_note(v) for _, v in found if heuristic_note(v)][:1]
        readers, broken = self._readers(ctx, call, [dict_key(ctx, part) for part, _ in found] if inside else None)
        if maybe:
            notes.append("; no fix: " + ", ".join(f"`{k}` (`{ctx.code(p)}`)" for k, p in maybe)
                         + " may hold a module too, and every module entry must change together")
        elif broken:
            notes.append(f"; no fix: {broken}, and must change with this save")
        notes.append(readers)
        edits = [] if maybe or broken else [ctx.replace(part, text) for (part, _), text in zip(found, fixed)]
        earlier = next((d for d in ctx.diagnostics if d.fix is not None and d.fix.edits == tuple(edits)), None)
        if earlier is not None:  # `ckpt` saved to `last` and to `best`: one fix, on the first
            notes.append(f"; fixed with the save at line {earlier.location.row}")
            edits = []
        ctx.report(
            call,
            self._headline(ctx, obj, found, inside),
            edits,
            UNSAFE,
            help=f"{what}{inside}: `torch.save` pickles the whole object, so loading it needs "
                 f"`weights_only=False` and the same code layout; save {' and '.join(f'`{f}`' for f in fixed)}"
                 + "".join(notes),
        )

    @staticmethod
    def _headline(ctx, obj, found, inside) -> str:
        """"`torch.save` of a whole nn.Module: `model` inside `ckpt`"."""
        guessed = all(value.evidence == "name-heuristic" for _, value in found)
        kind = "a whole model (by its name)" if guessed else "a whole nn.Module" if len(found) == 1 else "whole nn.Modules"
        subject = quoted_code(ctx.code(found[0][0]), 24) + (f" and {len(found) - 1} more" if len(found) > 1 else "")
        if inside:
            inside = " inside " + (quoted_code(ctx.code(obj), 20) if isinstance(obj, cst.Name) else "a container")
        return f"`torch.save` of {kind}: {subject}{inside}"

    @staticmethod
    def _readers(ctx, call, keys):
        """(note naming the project's loads of the path this call writes, which change with
        the fix; what shows a reader uses the saved module as one, which the fix would break,
        or ""). `keys`: the dict keys of the module entries, None for a whole-object save."""
        view = ctx.project
        site = site_of(ctx, call, "saves")
        path = site_path(view, site["path"]) if site is not None else None
        loads = load_sites(view, path) if path is not None else []
        named = [where(view, f, s["line"]) for f, s in loads]
        note = (f"; its readers ({', '.join(named[:3])}{', ...' if len(named) > 3 else ''}) must then build the "
                "model and call `load_state_dict`") if named else ""
        if keys is None:
            users = [(f, s["line"], "") for f, s in loads if "" in (s.get("module_keys") or ())]
        else:
            users = module_readers(view, [k for k in keys if k])
        if not users:
            return note, ""
        by_place = {}
        for f, line, k in users:
            by_place.setdefault(where(view, f, line), []).append(k)
        shown = ", ".join(place + (" (" + ", ".join(f"`{k}`" for k in keys if k) + ")" if any(keys) else "")
                          for place, keys in list(by_place.items())[:3])
        return note, f"{shown} {'uses' if len(by_place) == 1 else 'use'} the saved module as one"

    def _resaved(self, ctx, call, values) -> None:
        """`x = torch.load(f)` ... `x["model"].half()` ... `torch.save(x, s)`: the loaded
        checkpoint holds a model (its use shows it), and saving it pickles that model again."""
        for part, value in values:
            load = self._load_of(ctx, part) if value.kind == LOADED else None
            site = site_of(ctx, load, "loads") if load is not None else None
            holds = site.get("holds") if site is not None else None
            if holds is None or holds["kind"] != "module":
                continue
            name = ctx.code(part)
            if holds["entry"] and holds["entry"] != "?":
                key = ctx.quoted(holds["entry"], call)
                instead = f"`{name}[{key}] = {name}[{key}].state_dict()` before saving"
            else:
                instead = f"`{with_suffix(ctx, part, '.state_dict()')}`"
            ctx.report(
                call,
                f"{quoted_code(name, 30)} re-saved with the module the checkpoint of line {ctx.start(load).row} holds",
                help=f"`{name}` is the checkpoint loaded at line {ctx.start(load).row}, and {held_by(holds)}: "
                     f"saving it pickles that module again, so loading the new file needs `weights_only=False`; "
                     f"save {instead}",
            )
            return

    @staticmethod
    def _load_of(ctx, expr):
        """The `torch.load(...)` call a name is bound to (`x = torch.load(f)`)."""
        if isinstance(expr, cst.Name):
            binds, _ = ctx.values.bindings(expr)
            expr = binds[0].value if len(binds) == 1 and binds[0].kind == "assign" else None
        return expr if isinstance(expr, cst.Call) and ctx.call_qname(expr) == "torch.load" else None
