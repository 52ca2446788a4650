"""Small helpers several rules' messages share."""

from __future__ import annotations

from typing import Optional

from ckptlint.versions import format_version


def weights_only_default(settings) -> str:
    """What an omitted `weights_only` means on the project's torch range."""
    floor = getattr(settings, "torch_version", None)
    if floor is None:
        return (
            "before torch 2.6 it means `weights_only=False` (a malicious file runs code); "
            "from 2.6 `True` unless `TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD` is set"
        )
    where = f"torch {format_version(floor)} ({settings.torch_version_source})"
    if floor < (2, 6):
        return f"on {where} it means `weights_only=False`: loading the file runs any code it holds"
    return (
        f"on {where} it means `weights_only=True`, but only while "
        "`TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD` is unset"
    )


def weights_only_risk(settings) -> str:
    """What an omitted `weights_only` risks on the project's torch range, for a headline."""
    floor = getattr(settings, "torch_version", None)
    if floor is None:
        return "a file can run code on torch < 2.6"
    if floor < (2, 6):
        return f"the file can run code on torch {format_version(floor)}"
    return "safe only while `TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD` is unset"


def held_by(holds: dict) -> str:
    """"its `model` entry is used as a module (`ckpt['model'].fuse()`, line 7)"."""
    if holds["kind"] == "returned":
        return f"this function returns what it loads (line {holds['line']}), so its callers decide what the file may hold"
    what = "a module" if holds["kind"] == "module" else "a pickled object, not a tensor"
    where = f"its `{holds['entry']}` entry" if holds["entry"] and holds["entry"] != "?" else "what it loads"
    return f"{where} is used as {what} (`{holds['use']}`, line {holds['line']})"


def needs_more_than_weights(ctx, load) -> Optional[str]:
    """Why `weights_only=True` would refuse the file `load` reads, as the code shows it, with
    what will work instead; None when nothing shows it. Two kinds of evidence: a use of the
    loaded value as a module or another pickled object (analysis/contents.py), and a save of
    the same path elsewhere in the project that writes a whole model (the CKPT010 pairing)."""
    from ckptlint.rules._pairing import dict_saves_with_objects, save_sites, site_of, site_path, where

    site = site_of(ctx, load, "loads")
    if site is None:
        return None
    view = ctx.project
    holds = site.get("holds")
    saved_at, shown = None, None
    path = site_path(view, site["path"])
    if path is not None:
        found = [s for s in save_sites(view).get(path, []) if s[0] == "module"]
        if found:
            saved_at = where(view, found[0][1], found[0][2])
            shown = f"`{path}` is saved as a whole model at {saved_at}"
    if holds is None and saved_at is None and site.get("keys"):
        found = dict_saves_with_objects(view, site["keys"])
        if found:
            f, line, key, what = found[0]
            saved_at = where(view, f, line)
            read = ", ".join(f"`{k}`" for k in site["keys"])
            shown = f"it reads {read} like the checkpoint saved at {saved_at}, whose `{key}` entry is {what}"
    if holds is None and saved_at is None:
        return None
    if holds is not None and holds["kind"] == "returned" and saved_at is not None:
        holds = None  # the save site says more than the `return`
    shown = held_by(holds) if holds is not None else shown
    if holds is not None and holds["kind"] == "returned":
        return (f"{shown}: `weights_only=True` here would refuse, for every one of them, any file holding "
                "more than tensors (a whole training checkpoint); pass it where a caller loads plain "
                "weights, or take a `weights_only` parameter, and allow the classes checkpoints need "
                "with `torch.serialization.safe_globals([...])`")
    resave = (f"re-save it as a state dict at {saved_at} (`torch.save(model.state_dict(), ...)`)" if saved_at
              else "re-save it as a state dict where it is written")
    what = "classes" if holds is None or holds["kind"] == "module" else "classes it holds"
    return (f"{shown}, which `weights_only=True` refuses: {resave}, or allow the {what} with "
            "`with torch.serialization.safe_globals([...]):`")


def clip(text: str, limit: int) -> str:
    """`text` on one line, cut to `limit` characters with `…` (for a headline; the help says
    it whole)."""
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def quoted_code(text: str, limit: int = 40) -> str:
    """`text` in backticks for a headline, clipped to `limit` characters."""
    return f"`{clip(text, limit)}`"
