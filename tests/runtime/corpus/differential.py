"""Zip variants for the differential test: every candidate record runs its own payload (a
marker of its own) and then names a global no one can import, ``diffmark_<variant>_<i>.x``,
so torch fails right after the one record it read, and a scanner that read a record names
that global in its report.

``variants(root)`` -> [(name, path, {tag: (record name, marker path)})].
"""

from __future__ import annotations

import pathlib

from . import ops, zips
from .zips import Rec


def _layouts():
    """name -> [(record name, is candidate)], central-directory order = list order, or a
    ``("concat", ...)`` pair of archives."""
    rest = [("archive/byteorder", False), ("archive/version", False)]
    out = {}
    for n in range(2, 6):
        out[f"dup{n}_records_first"] = [("archive/data.pkl", True)] * n + rest
        out[f"dup{n}_records_last"] = rest + [("archive/data.pkl", True)] * n
    out["case_pkl_PKL"] = [("archive/data.pkl", True), ("archive/data.PKL", True)] + rest
    out["case_PKL_pkl"] = [("archive/data.PKL", True), ("archive/data.pkl", True)] + rest
    out["case_three"] = [("archive/Data.Pkl", True), ("archive/data.pkl", True), ("archive/DATA.PKL", True)] + rest
    out["case_and_dup"] = [("archive/data.pkl", True), ("archive/DATA.PKL", True), ("archive/data.pkl", True)] + rest
    out["renamed_record"] = [("archive/DATA.PKL", True)] + rest
    out["renamed_folder"] = [("ARCHIVE/Data.Pkl", True), ("ARCHIVE/byteorder", False), ("ARCHIVE/version", False)]
    out["nested_and_top"] = [("archive/sub/data.pkl", True), ("archive/data.pkl", True), ("archive/x/DATA.PKL", True)] + rest
    # torch refuses an archive with a record outside the first record's folder; a scanner
    # must still read every data.pkl-like record
    out["outside_folder"] = [("archive/data.pkl", True), ("other/data.pkl", True), ("data.pkl", True)] + rest
    out["outside_folder_first"] = [("other/data.pkl", True), ("other/version", False), ("archive/data.pkl", True)] + rest
    out["bad_extra"] = [("archive/data.pkl", True), ("archive/byteorder", "bad_extra"), ("archive/version", False)]
    out["deflated_dup"] = [("archive/data.pkl", "deflate"), ("archive/data.pkl", "deflate")] + rest
    return out


BAD_EXTRA = b"\xfe\xca" + (200).to_bytes(2, "little") + b"xx"
# variants torch opens (and so reads exactly one record of); the others it refuses
TORCH_REFUSES = {"outside_folder", "outside_folder_first"}


def variants(root) -> list:
    root = pathlib.Path(root)
    (root / "markers").mkdir(parents=True, exist_ok=True)
    out = []
    for v, (name, layout) in enumerate(sorted(_layouts().items())):
        tags, recs = {}, []
        for i, (record, kind) in enumerate(layout):
            if kind is False or kind == "bad_extra":
                data = b"little" if record.endswith("byteorder") else b"3\n"
                recs.append(Rec(record, data, extra=BAD_EXTRA if kind == "bad_extra" else b""))
                continue
            tag = f"{v}_{i}"
            marker = root / "markers" / f"{name}-{i}"
            tags[tag] = (record, str(marker))
            recs.append(Rec(record, ops.hostile(marker, tag=tag), deflate=kind == "deflate"))
        path = root / f"diff_{name}.pt"
        path.write_bytes(zips.build(recs))
        out.append((name, path, tags))
    out.append(_concat(root, len(out)))
    return out


def _concat(root: pathlib.Path, v: int):
    """Two archives back to back (see hostile.py, zip_cd_offset_concat): torch reads the
    first one's record, Python's zipfile the second's."""
    name = "cd_offset_concat"
    rest = zips.torch_records(b"")[1:]
    tags, parts = {}, []
    for i in range(2):
        tag = f"{v}_{i}"
        marker = root / "markers" / f"{name}-{i}"
        tags[tag] = ("archive/data.pkl", str(marker))
        parts.append(zips.build([Rec("archive/data.pkl", ops.hostile(marker, tag=tag))] + rest))
    path = root / f"diff_{name}.pt"
    path.write_bytes(parts[0][:-22] + parts[1])
    return name, path, tags


def names() -> list:
    return sorted(_layouts()) + ["cd_offset_concat"]
