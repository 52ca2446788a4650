from ckptlint.analysis.calls import POSITIONAL, find_arg, is_literal
from ckptlint.diagnostic import UNSAFE
from ckptlint.rules._base import Invalid, Rule, Valid


class HubLoadWithoutWeightsOnly(Rule):
    code = "CKPT011"
    name = "hub-load-without-weights-only"
    summary = "`torch.hub.load_state_dict_from_url` without `weights_only=True`"
    fix_safety = "unsafe"
    fix_title = "Add `weights_only=True`"
    fix_availability = "sometimes"
    security_severity = "8.8"
    qualnames = ("torch.hub.load_state_dict_from_url",)
    docs = """
    ## What it does
    Checks for `torch.hub.load_state_dict_from_url(...)` and
    `torch.utils.model_zoo.load_url(...)` calls that do not pass `weights_only=True`.

    ## Why is this bad?
    Unlike `torch.load`, these still default to `weights_only=False` (torch 2.13 included):
    a file fetched from a URL is fully unpickled, so whoever controls the URL, the mirror or
    the cache directory can run code on your machine.

    ## Example
    ```python
    from torch.hub import load_state_dict_from_url

    sd = load_state_dict_from_url(URL)
    ```

    ## Use instead
    ```python
    from torch.hub import load_state_dict_from_url

    sd = load_state_dict_from_url(URL, weights_only=True)
    ```

    ## Fix safety
    Unsafe: a file that holds more than tensors and containers no longer loads. An explicit
    `weights_only=False` is reported without a fix.
    """
    valid = (
        Valid("import torch\ntorch.hub.load_state_dict_from_url(URL, weights_only=True)\n"),
        Valid("import torch\ntorch.hub.load_state_dict_from_url(URL, **kw)\n"),
        Valid("import torch\ntorch.hub.load_state_dict_from_url(URL, weights_only=safe)\n"),
        Valid("def load_url(u):\n    return u\n\nload_url(URL)\n"),
    )
    invalid = (
        Invalid(
            "import torch\nsd = torch.hub.load_state_dict_from_url(URL, map_location='cpu')\n",
            "import torch\nsd = torch.hub.load_state_dict_from_url(URL, map_location='cpu', weights_only=True)\n",
        ),
        Invalid(
            "from torch.utils import model_zoo\nsd = model_zoo.load_url(URL)\n",
            "from torch.utils import model_zoo\nsd = model_zoo.load_url(URL, weights_only=True)\n",
        ),
        Invalid("from torch.hub import load_state_dict_from_url as f\nsd = f(URL, weights_only=False)\n"),
    )

    def check(self, ctx):
        for call in ctx.calls_to("torch.hub.load_state_dict_from_url"):
            arg = find_arg(call, "weights_only", POSITIONAL["torch.hub.load_state_dict_from_url"])
            if arg is None:
                ctx.report(
                    call,
                    "`load_state_dict_from_url` without `weights_only=True` unpickles a downloaded file",
                    [ctx.add_keyword(call, "weights_only=True")],
                    UNSAFE,
                    help="`load_state_dict_from_url` without `weights_only=True` fully unpickles a file "
                         "fetched from a URL (it defaults to `False`, torch 2.13 included); pass "
                         "`weights_only=True`",
                )
            elif hasattr(arg, "value") and is_literal(arg.value, "False"):
                ctx.report(
                    call,
                    "`load_state_dict_from_url(..., weights_only=False)` unpickles a downloaded file",
                    help="`load_state_dict_from_url(..., weights_only=False)` unpickles a file fetched "
                         "from a URL: whoever controls it can run code here; use `weights_only=True`",
                )
