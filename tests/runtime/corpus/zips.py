"""A zip writer with nothing checked, so records can repeat, clash in case, carry broken
extra fields, or sit in an order of our choosing (Python's zipfile would refuse or
normalise some of these).

An ``Rec`` is one record: its name, its bytes, optional extra fields (central and local
header) and deflate. ``build`` lays the local records out in list order, then the central
directory in ``cd_order`` (default: the same order), then the end record.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass


@dataclass
class Rec:
    name: str
    data: bytes
    extra: bytes = b""  # central directory extra field
    local_extra: bytes = b""
    deflate: bool = False


def _packed(rec: Rec) -> bytes:
    if not rec.deflate:
        return rec.data
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(rec.data) + c.flush()


def build(recs, cd_order=None, base: int = 0, comment: bytes = b"") -> bytes:
    """The archive's bytes; ``base`` is added to every offset written (for archives meant to
    sit ``base`` bytes into a file)."""
    body, offsets = b"", []
    for rec in recs:
        packed = _packed(rec)
        name = rec.name.encode()
        offsets.append(base + len(body))
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8 if rec.deflate else 0, 0, 0x21,
                            zlib.crc32(rec.data), len(packed), len(rec.data), len(name),
                            len(rec.local_extra)) + name + rec.local_extra + packed
    order = list(range(len(recs))) if cd_order is None else list(cd_order)
    cd = b""
    for i in order:
        rec = recs[i]
        name = rec.name.encode()
        cd += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8 if rec.deflate else 0, 0, 0x21,
                          zlib.crc32(rec.data), len(_packed(rec)), len(rec.data), len(name),
                          len(rec.extra), 0, 0, 0, 0, offsets[i]) + name + rec.extra
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(order), len(order), len(cd), base + len(body),
                      len(comment)) + comment
    return body + cd + end


def torch_records(pkl: bytes, folder: str = "archive", name: str = "data.pkl") -> list:
    """The records torch.save writes, for a pickle that names no storage."""
    return [Rec(f"{folder}/{name}", pkl), Rec(f"{folder}/byteorder", b"little"),
            Rec(f"{folder}/version", b"3\n"), Rec(f"{folder}/.data/serialization_id", b"0" * 40)]
