"""Runtime phase (`ckptlint verify`): checks checkpoint files, optionally against models.

The only part of ckptlint that may import torch, and only lazily inside functions
(``compare.py``). ``reader`` and ``pickle_scan`` never import it.
"""

from __future__ import annotations


def parse_entries(raw, config_file):
    """Validate the ``[[tool.ckptlint.checkpoints]]`` array; see runner.parse_entries."""
    from ckptlint.runtime.check import parse_entries as _parse

    return _parse(raw, config_file)


def verify(entries, files, *, root, torch_version, safe_globals, sniff_files=False):
    """Check checkpoints; see runner.verify. Returns (diagnostics, notes)."""
    from ckptlint.runtime.check import verify as _verify

    return _verify(entries, files, root=root, torch_version=torch_version, safe_globals=safe_globals,
                   sniff_files=sniff_files)


__all__ = ["parse_entries", "verify"]
