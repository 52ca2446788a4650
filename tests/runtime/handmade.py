"""torch's zip checkpoint format written without torch, so the reader and `ckptlint verify`
are tested on every Python version (torch wheels exist here for 3.11 only).

The layout is torch.save's: ``<folder>/data.pkl`` (protocol 2; tensors are
``torch._utils._rebuild_tensor_v2`` calls whose storages are persistent ids
``('storage', torch.<Dtype>Storage, key, location, numel)``), ``<folder>/data/<key>`` with the
raw bytes, ``<folder>/version`` and ``<folder>/byteorder``.
"""

from __future__ import annotations

import collections
import pickle
import struct
import zipfile

# storage class -> (struct format, item size)
STORAGES = {"FloatStorage": ("f", 4), "LongStorage": ("q", 8), "HalfStorage": ("e", 2)}


class Global:
    """Pickled as ``GLOBAL module name`` without importing the module."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name


class Tensor:
    """A contiguous tensor: ``values`` flat, ``shape`` its dimensions."""

    def __init__(self, values, shape, storage: str = "FloatStorage", location: str = "cpu"):
        self.values, self.shape, self.storage, self.location = list(values), tuple(shape), storage, location

    def stride(self):
        out, step = [], 1
        for n in reversed(self.shape):
            out.append(step)
            step *= n
        return tuple(reversed(out))

    def raw(self) -> bytes:
        fmt, _ = STORAGES[self.storage]
        return struct.pack("<%d%s" % (len(self.values), fmt), *self.values)


class _Storage:
    def __init__(self, key: str, tensor: Tensor):
        self.key, self.tensor = key, tensor


class _Pickler(pickle._Pickler):  # the pure-Python pickler: its dispatch table is extensible
    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, fh, storages):
        super().__init__(fh, protocol=2)
        self.storages = storages

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            t = obj.tensor
            return ("storage", Global("torch", t.storage), obj.key, t.location, len(t.values))
        return None

    def save_handmade_global(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("ascii"))

    def save_tensor(self, obj):
        key = str(len(self.storages))
        self.storages[key] = obj
        self.save_reduce(
            Global("torch._utils", "_rebuild_tensor_v2"),
            (_Storage(key, obj), 0, obj.shape, obj.stride(), False, collections.OrderedDict()),
        )

    dispatch[Global] = save_handmade_global
    dispatch[Tensor] = save_tensor

    def save_reduce(self, func, args, *rest, obj=None, **kw):  # func may be a Global
        if isinstance(func, Global):
            self.save(func)
            self.save(args)
            self.write(pickle.REDUCE)
            return
        super().save_reduce(func, args, *rest, obj=obj, **kw)


def dumps(state) -> tuple:
    """(data.pkl bytes, {storage key: Tensor})."""
    import io

    buf, storages = io.BytesIO(), {}
    _Pickler(buf, storages).dump(state)
    return buf.getvalue(), storages


def save_zip(state, path, folder: str = "archive", skip_storage=None, short_storage=None) -> None:
    data, storages = dumps(state)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{folder}/data.pkl", data)
        z.writestr(f"{folder}/byteorder", "little")
        for key, t in storages.items():
            if key == skip_storage:
                continue
            raw = t.raw()
            z.writestr(f"{folder}/data/{key}", raw[:3] if key == short_storage else raw)
        z.writestr(f"{folder}/version", "3\n")


def small_state() -> dict:
    """The keys, shapes and dtypes of ``Sequential(Linear(4, 3), BatchNorm1d(3)).state_dict()``."""
    return {
        "0.weight": Tensor([0.1 * i for i in range(12)], (3, 4)),
        "0.bias": Tensor([0.0, 0.5, 1.0], (3,)),
        "1.weight": Tensor([1.0] * 3, (3,)),
        "1.bias": Tensor([0.0] * 3, (3,)),
        "1.running_mean": Tensor([0.0] * 3, (3,)),
        "1.running_var": Tensor([1.0] * 3, (3,)),
        "1.num_batches_tracked": Tensor([0], (), storage="LongStorage"),
    }
