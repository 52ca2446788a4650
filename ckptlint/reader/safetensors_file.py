"""safetensors files: an 8-byte header length, a JSON header, raw tensor bytes. No loader of
them runs code; the reader takes names, dtypes and shapes from the header."""

from __future__ import annotations

import struct
from typing import BinaryIO

from ckptlint.reader.checkpoint import Checkpoint
from ckptlint.reader.records import PDict, TensorInfo

MAX_SAFETENSORS_HEADER = 100 << 20

SAFETENSORS_DTYPES = {
    "F64": "torch.float64", "F32": "torch.float32", "F16": "torch.float16",
    "BF16": "torch.bfloat16", "I64": "torch.int64", "I32": "torch.int32",
    "I16": "torch.int16", "I8": "torch.int8", "U8": "torch.uint8", "BOOL": "torch.bool",
    "U16": "torch.uint16", "U32": "torch.uint32", "U64": "torch.uint64",
    "F8_E4M3": "torch.float8_e4m3fn", "F8_E5M2": "torch.float8_e5m2",
    "F8_E8M0": "torch.float8_e8m0fnu", "C64": "torch.complex64",
}


def looks_like_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def read_safetensors(ck: Checkpoint, f: BinaryIO, size: int) -> None:
    import json

    ck.format = "safetensors"
    f.seek(0)
    (n,) = struct.unpack("<Q", f.read(8))
    if n > MAX_SAFETENSORS_HEADER:
        ck.not_checkpoint = "bad safetensors header (header larger than 100 MB)"
        return
    try:
        header = json.loads(f.read(n).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        ck.not_checkpoint = f"bad safetensors header ({exc.__class__.__name__})"
        return
    if not isinstance(header, dict):
        ck.not_checkpoint = "bad safetensors header (not a JSON object)"
        return
    data_len = size - 8 - n
    root = PDict()
    for key in sorted(header):
        value = header[key]
        if key == "__metadata__":
            ck.metadata = value if isinstance(value, dict) else {}
            continue
        if not (isinstance(value, dict) and isinstance(value.get("shape"), list)
                and isinstance(value.get("data_offsets"), list) and len(value["data_offsets"]) == 2):
            ck.not_checkpoint = f"bad safetensors header (entry `{key}`)"
            return
        begin, end = value["data_offsets"]
        if end > data_len:
            ck.problems.append(f"tensor `{key}` lies past the end of the file (truncated)")
        dtype = SAFETENSORS_DTYPES.get(str(value.get("dtype")), f"unknown ({value.get('dtype')})")
        root[key] = TensorInfo(dtype, tuple(value["shape"]), "cpu", None)
    ck.root = root
