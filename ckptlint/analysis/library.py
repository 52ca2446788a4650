"""What well-known library names construct: modules, wrappers, tensors, state dicts.

One table, consulted by qualified name (after ckptlint.analysis.names.canonical)."""

from __future__ import annotations

import re
from typing import Optional

WRAPPERS = {
    "torch.nn.DataParallel": "dp",
    "torch.nn.parallel.DistributedDataParallel": "ddp",
    "torch.distributed.fsdp.FullyShardedDataParallel": "fsdp",
    "torch.distributed.fsdp.fully_sharded_data_parallel.FullyShardedDataParallel": "fsdp",
    "torch.compile": "compile",
}
WRAPPER_NAMES = {
    "dp": "DataParallel",
    "ddp": "DistributedDataParallel",
    "fsdp": "FullyShardedDataParallel",
    "compile": "`torch.compile`",
}

# Functions that return the model inside a wrapper (`de_parallel(model)`)
UNWRAP_FUNCS = frozenset(["unwrap_model", "de_parallel", "extract_model_from_parallel", "get_unwrapped_model"])

# torch.nn names that are not modules
_NN_NOT_MODULES = frozenset(["Parameter", "UninitializedParameter", "UninitializedBuffer", "Buffer"])

# Base classes (for subclassing) and classes that are modules, outside torch.nn
MODULE_CLASSES = frozenset([
    "pytorch_lightning.LightningModule",
    "pytorch_lightning.core.LightningModule",
    "pytorch_lightning.core.module.LightningModule",
    "lightning.LightningModule",
    "lightning.pytorch.LightningModule",
    "lightning.pytorch.core.module.LightningModule",
    "transformers.PreTrainedModel",
    "transformers.modeling_utils.PreTrainedModel",
    "diffusers.ModelMixin",
    "diffusers.models.modeling_utils.ModelMixin",
    "torch.jit.ScriptModule",
])

# Plain callables that return a module
MODULE_FACTORIES = frozenset([
    "timm.create_model",
    "timm.models.create_model",
    "torchvision.models.get_model",
    "torch.hub.load",
    "open_clip.create_model",
    "torch.nn.utils.weight_norm",
    "torch.nn.utils.spectral_norm",
    "torch.nn.SyncBatchNorm.convert_sync_batchnorm",
    "torch.quantization.quantize_dynamic",
    "torch.ao.quantization.quantize_dynamic",
])

_TV_NOT_MODELS = re.compile(r"Weights$|^get_weight$|^get_model_weights$|^list_models$|^get_model_builder$")
_HF_MODEL = re.compile(r"^(AutoModel\w*|\w*Model|\w*For[A-Z]\w*|\w*LMHeadModel)$")
_HF_PACKAGES = ("transformers", "diffusers", "peft", "sentence_transformers")

TENSOR_FACTORIES = frozenset(
    "tensor as_tensor from_numpy zeros ones empty full rand randn randint randperm arange "
    "linspace logspace eye zeros_like ones_like empty_like full_like rand_like randn_like "
    "stack cat concat cat_ hstack vstack where matmul mm bmm einsum".split()
)


def library_class_kind(qname: Optional[str]) -> Optional[str]:
    """"module", "wrapper:<kind>", "tensor", "other" or None for a class/callable by name."""
    if not qname:
        return None
    if qname in WRAPPERS:
        return "wrapper:" + WRAPPERS[qname]
    if qname in ("torch.nn.Module",) or qname in MODULE_CLASSES or qname in MODULE_FACTORIES:
        return "module"
    parts = qname.split(".")
    last = parts[-1]
    if parts[:2] == ["torch", "nn"] and len(parts) in (3, 5) and last[:1].isupper():
        if len(parts) == 5 and parts[2] != "modules":
            return None
        return "other" if last in _NN_NOT_MODULES else "module"
    if parts[:2] == ["torchvision", "models"] and len(parts) >= 3:
        if _TV_NOT_MODELS.search(last) or last.startswith("_"):
            return None
        return "module"
    if parts[0] == "timm" and last == "create_model":
        return "module"
    if parts[0] in _HF_PACKAGES and len(parts) >= 2 and _HF_MODEL.match(last):
        return "module"
    if parts[0] == "torch" and len(parts) == 2 and last in TENSOR_FACTORIES:
        return "tensor"
    if qname in ("torch.Tensor", "torch.nn.Parameter"):
        return "tensor"
    return None


def from_pretrained_kind(owner_qname: Optional[str]) -> Optional[str]:
    """`X.from_pretrained(...)`: a module when X is a known model class."""
    if not owner_qname:
        return None
    parts = owner_qname.split(".")
    if parts[0] in _HF_PACKAGES and _HF_MODEL.match(parts[-1]):
        return "module"
    return None
