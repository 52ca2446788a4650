"""Canonical qualified names: one table of re-exports, every spelling mapped to one name.

Kept apart from names.py so that code which never builds a LibCST tree (the triage, the
project index) can use it without importing LibCST."""

from __future__ import annotations

import ast
from typing import List, Optional

CANONICAL = {
    "torch.serialization.load": "torch.load",
    "torch.serialization.save": "torch.save",
    "torch.utils.model_zoo.load_url": "torch.hub.load_state_dict_from_url",
    "torch.nn.parallel.DataParallel": "torch.nn.DataParallel",
    "torch.nn.parallel.data_parallel.DataParallel": "torch.nn.DataParallel",
    "torch.nn.parallel.DistributedDataParallel": "torch.nn.parallel.DistributedDataParallel",
    "torch.nn.parallel.distributed.DistributedDataParallel": "torch.nn.parallel.DistributedDataParallel",
    "torch.nn.modules.module.Module": "torch.nn.Module",
    "torch.nn.modules.Module": "torch.nn.Module",
    "posix.environ": "os.environ",
    "posix.putenv": "os.putenv",
    # torch.distributed.checkpoint re-exports its saver and loader; FSDP2 and tensor parallel
    # live under private module paths too
    "torch.distributed.checkpoint.state_dict_saver.save": "torch.distributed.checkpoint.save",
    "torch.distributed.checkpoint.state_dict_saver.async_save": "torch.distributed.checkpoint.async_save",
    "torch.distributed.checkpoint.state_dict_saver.save_state_dict": "torch.distributed.checkpoint.save_state_dict",
    "torch.distributed.checkpoint.state_dict_loader.load": "torch.distributed.checkpoint.load",
    "torch.distributed.checkpoint.state_dict_loader.load_state_dict": "torch.distributed.checkpoint.load_state_dict",
    "torch.distributed._composable.fsdp.fully_shard": "torch.distributed.fsdp.fully_shard",
    "torch.distributed._composable.fsdp.fully_shard.fully_shard": "torch.distributed.fsdp.fully_shard",
    "torch.distributed.fsdp._fully_shard.fully_shard": "torch.distributed.fsdp.fully_shard",
    "torch.distributed.fsdp._fully_shard._fully_shard.fully_shard": "torch.distributed.fsdp.fully_shard",
    "torch.distributed.tensor.parallel.api.parallelize_module": "torch.distributed.tensor.parallel.parallelize_module",
}


def canonical(qname: Optional[str]) -> Optional[str]:
    if qname is None:
        return None
    if qname in CANONICAL:
        return CANONICAL[qname]
    # a prefix may be re-exported too: torch.serialization.load.__call__ is rare; keep exact
    return qname


def spellings(qname: str) -> List[str]:
    """`qname` and every name CANONICAL maps to it (`torch.serialization.load` for
    `torch.load`), in a fixed order."""
    return [qname, *sorted(k for k, v in CANONICAL.items() if v == qname and k != qname)]


def dotted(node) -> Optional[str]:
    """`a.b.c` of an ast expression as a string, or None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))
