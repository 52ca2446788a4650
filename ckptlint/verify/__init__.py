"""Runtime phase (`ckptlint verify`): checks checkpoint files, read by ckptlint/reader/,
and compares them with the configured models. Above the rules, whose runtime rules
(CKPT101-111) name its findings.

The only part of ckptlint that imports torch: ``compare.py``, loaded lazily when an entry
names a model.
"""

from __future__ import annotations


def parse_entries(raw, config_file):
    """Validate the ``[[tool.ckptlint.checkpoints]]`` array; see ckptlint.entries."""
    from ckptlint.entries import parse_entries as _parse

    return _parse(raw, config_file)


def verify(entries, files, *, root, torch_version, safe_globals, sniff_files=False, verbose=False):
    """Check checkpoints; see runner.verify. Returns (diagnostics, notes)."""
    from ckptlint.verify.check import verify as _verify

    return _verify(entries, files, root=root, torch_version=torch_version, safe_globals=safe_globals,
                   sniff_files=sniff_files, verbose=verbose)


__all__ = ["parse_entries", "verify"]
