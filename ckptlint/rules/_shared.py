"""Small helpers several rules' messages share."""

from __future__ import annotations

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
