"""Non-zip containers: torch's legacy stream, the torch<0.4 tar format, and DCP folders."""

from __future__ import annotations

import io
import os
import pickle
import tarfile

from . import ops

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def legacy(parts_override: dict) -> bytes:
    """torch's legacy (non-zip) stream: magic, protocol, sys_info, main pickle, storage keys.
    ``parts_override`` maps a position (0-4) to the bytes to put there instead."""
    parts = [pickle.dumps(LEGACY_MAGIC, 2), pickle.dumps(1001, 2),
             pickle.dumps({"protocol_version": 1001, "little_endian": True,
                           "type_sizes": {"short": 2, "int": 4, "long": 4}}, 2),
             pickle.dumps({"epoch": 1}, 2), pickle.dumps([], 2)]
    for pos, data in parts_override.items():
        parts[pos] = data
    return b"".join(parts)


def tar(members, links=None) -> bytes:
    """A tar as torch<0.4 wrote it; ``members`` name -> bytes, ``links`` name -> hard-link
    target (another member's name)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.LNKTYPE
            info.linkname = target
            t.addfile(info)
    return buf.getvalue()


def tar_full(**override) -> bytes:
    """All four members torch reads, benign unless overridden (``pickle=..., tensors=...``)."""
    members = {"sys_info": pickle.dumps({"protocol_version": 1001}, 2),
               "pickle": pickle.dumps({"epoch": 1}, 2),
               "storages": pickle.dumps(0, 2) + pickle.dumps([], 2),
               "tensors": pickle.dumps(0, 2)}
    members.update(override)
    return tar(members)


# -- torch.distributed.checkpoint ------------------------------------------------------


def dcp_state(torch):
    torch.manual_seed(0)
    return {"model": torch.nn.Linear(4, 2).state_dict(), "step": 7,
            "extra": {"name": "run1", "lr": 0.1}}


def dcp_save(torch, folder) -> None:
    """A real DCP checkpoint written by torch.distributed.checkpoint.save in one process."""
    import warnings

    import torch.distributed.checkpoint as dcp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcp.save(dcp_state(torch), checkpoint_id=str(folder))


def dcp_replace_item(folder, fqn: str, blob: bytes) -> str:
    """Swap the bytes of item ``fqn`` in its ``.distcp`` shard for ``blob`` (later items move;
    ``.metadata`` is rewritten to match). Returns the shard's path."""
    meta_path = os.path.join(folder, ".metadata")
    with open(meta_path, "rb") as f:
        meta = pickle.load(f)  # our own file, written a moment ago by dcp.save
    target = next(k for k in meta.storage_data if k.fqn == fqn)
    info = meta.storage_data[target]
    shard = os.path.join(folder, info.relative_path)
    with open(shard, "rb") as f:
        data = f.read()
    delta = len(blob) - info.length
    data = data[:info.offset] + blob + data[info.offset + info.length:]
    for key, other in meta.storage_data.items():
        if other.relative_path == info.relative_path and other.offset > info.offset:
            other.offset += delta
    info.length = len(blob)
    with open(shard, "wb") as f:
        f.write(data)
    with open(meta_path, "wb") as f:
        pickle.dump(meta, f)
    return shard


def dcp_metadata_with_payload(folder, marker) -> str:
    """``.metadata`` that runs a payload first and then is the real metadata (DCP loads on)."""
    meta_path = os.path.join(folder, ".metadata")
    with open(meta_path, "rb") as f:
        real = f.read()
    assert real[:2] == ops.PROTO4
    with open(meta_path, "wb") as f:
        f.write(ops.PROTO4 + ops.system_call(marker) + ops.POP + real[2:])
    return meta_path
