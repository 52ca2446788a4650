from ckptlint.rules._base import Invalid, Rule, Valid
from ckptlint.rules._pairing import save_sites, site_of, site_path, where
from ckptlint.rules._shared import quoted_code

_NET = "import torch\nimport torch.nn as nn\n\n\nclass Net(nn.Module):\n    pass\n\n\n"


class SaveLoadFormatMismatch(Rule):
    code = "CKPT010"
    name = "save-load-format-mismatch"
    summary = "a path saved as a whole model but loaded as a state dict, or the other way round"
    fix_safety = "none"
    # it reports only on these calls, so files without them skip LibCST (triage.py)
    qualnames = ("torch.load",)
    docs = """
    ## What it does
    Pairs the paths written by `torch.save` with the paths read by `torch.load` across the
    project's files, and reports a load that expects the other format: a file saved as a
    whole model (`torch.save(model, p)`) but passed to `load_state_dict(torch.load(p))`, or a
    file saved as a state dict (`torch.save(model.state_dict(), p)`) whose loaded value is
    used as a module (`.eval()`, called, ...). Paths pair when they are the same literal, when
    `os.path.join(...)`, f-strings and `Path(...) / "..."` have the same literal parts (the
    folder may differ: `os.path.join(out_dir, "best.pt")` pairs with `f"{ckpt_dir}/best.pt"`),
    or through module-level constants, also imported from another project file.

    ## Why is this bad?
    `load_state_dict` given a module fails (`'Net' object has no attribute 'copy'` or similar),
    and a state dict used as a model fails when it is first called, often far from the cause,
    typically only in the evaluation or serving script that nobody ran in CI.

    ## Example
    ```python
    # train.py
    torch.save(model, "best.pt")
    # evaluate.py
    model.load_state_dict(torch.load("best.pt"))
    ```

    ## Use instead
    ```python
    # train.py
    torch.save(model.state_dict(), "best.pt")
    # evaluate.py
    model.load_state_dict(torch.load("best.pt"))
    ```

    ## Fix safety
    No fix: either side may be the one to change.
    """
    valid = (
        Valid(_NET + "model = Net()\ntorch.save(model.state_dict(), 'best.pt')\n"
              "model.load_state_dict(torch.load('best.pt', weights_only=True))\n"),
        Valid(_NET + "model = Net()\ntorch.save(model, 'best.pt')\nm = torch.load('best.pt', weights_only=False)\n"
              "m.eval()\n"),
        Valid(_NET + "model = Net()\ntorch.save(model, 'a.pt')\nmodel.load_state_dict(torch.load('b.pt'))\n"),
        Valid(_NET + "model = Net()\ntorch.save(model, 'best.pt')\n"
              "model.load_state_dict(torch.load('best.pt')['model'])\n"),
        Valid(_NET + "import os\nmodel = Net()\ntorch.save(model, os.path.join(d, 'best.pt'))\n"
              "model.load_state_dict(torch.load(os.path.join(d, 'last.pt')))\n"),
        Valid(_NET + "model = Net()\ntorch.save(model.state_dict(), 'best.pt')\n"
              "sd = torch.load('best.pt')\nmodel.load_state_dict(sd)\n"),
    )
    invalid = (
        Invalid(
            _NET + "model = Net()\ntorch.save(model, 'best.pt')\n"
            "model.load_state_dict(torch.load('best.pt', weights_only=False))\n",
            help_contains="saved as a whole model at example.py:10",
        ),
        Invalid(
            _NET + "import os\nCKPT = 'weights/net.pth'\n\ndef train():\n    model = Net()\n"
            "    torch.save(model.state_dict(), CKPT)\n\ndef serve():\n    m = torch.load(CKPT)\n    m.eval()\n",
            message_contains="saved as a state dict",
        ),
        Invalid(
            _NET + "import os\n\ndef train(out_dir):\n    model = Net()\n"
            "    torch.save(model, os.path.join(out_dir, 'best.pt'))\n\n"
            "def test(model, ckpt_dir):\n    model.load_state_dict(torch.load(f'{ckpt_dir}/best.pt'))\n",
        ),
        Invalid(
            _NET + "from pathlib import Path\nmodel = Net()\ntorch.save(model.state_dict(), Path(root) / 'net.pt')\n"
            "net = torch.load(Path(root) / 'net.pt')\nout = net(x)\n",
        ),
        Invalid(
            # handed back to the caller as well: still used here as a model
            _NET + "def export(model):\n    torch.save(model.state_dict(), 'exported.pth')\n\n"
            "def restore():\n    net = torch.load('exported.pth')\n    net.eval()\n    return net\n",
            help_contains="saved as a state dict at example.py:10",
        ),
    )

    def check(self, ctx):
        view = ctx.project
        current = view.current
        if not current or not current["loads"]:
            return
        for call in ctx.calls_to("torch.load"):
            load = site_of(ctx, call, "loads")
            if load is None or load["expects"] is None:
                continue
            path = site_path(view, load["path"])  # None for no path or a literal that cannot pair
            if path is None:
                continue
            found = save_sites(view).get(path, [])
            kinds = {k for k, _, _ in found}
            if len(kinds) != 1 or load["expects"] in kinds:
                continue  # not saved here, saved both ways, or consistent
            kind, file, line = found[0]
            at = where(view, file, line)
            shown = quoted_code(path, 30)
            if kind == "module":
                headline = f"{shown} is saved as a whole model but loaded into `load_state_dict`"
                msg = (f"`{path}` is saved as a whole model at {at}, but loaded here into "
                       "`load_state_dict`, which needs a state dict; save `model.state_dict()` there")
            else:
                headline = f"{shown} is saved as a state dict but used here as a model"
                msg = (f"`{path}` is saved as a state dict at {at}, but used here as a model; "
                       "build the model and call `load_state_dict` with what `torch.load` returns")
            ctx.report(call, headline, help=msg)
