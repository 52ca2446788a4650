"""Small helpers several rules' messages share."""

from __future__ import annotations

from typing import Optional

from ckptlint.config import format_version


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


def needs_more_than_weights(ctx, load) -> Optional[str]:
    """Why `weights_only=True` would refuse the file `load` reads, as the code shows it, with
    what will work instead; None when nothing shows it. Two kinds of evidence: a use of the
    loaded value as a module or another pickled object (analysis/loaded.py), and a save of
    the same path elsewhere in the project that writes a whole model (the CKPT010 pairing)."""
    from ckptlint.analysis.loaded import what_it_holds
    from ckptlint.rules._pairing import save_sites, site_of, site_path, where

    held = what_it_holds(ctx, load)
    saved_at = None
    site = site_of(ctx, load, "loads")
    path = site_path(ctx.project, site["path"]) if site is not None else None
    if path is not None:
        found = [s for s in save_sites(ctx.project).get(path, []) if s[0] == "module"]
        if found:
            saved_at = where(ctx.project, found[0][1], found[0][2])
    if held is None and saved_at is None:
        return None
    shown = held.describe(ctx) if held is not None else f"`{path}` is saved as a whole model at {saved_at}"
    resave = (f"re-save it as a state dict at {saved_at} (`torch.save(model.state_dict(), ...)`)" if saved_at
              else "re-save it as a state dict where it is written")
    what = "classes" if held is None or held.kind == "module" else "classes it holds"
    return (f"{shown}, which `weights_only=True` refuses: {resave}, or allow the {what} with "
            "`with torch.serialization.safe_globals([...]):`")
