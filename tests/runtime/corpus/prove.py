"""Run real loaders on files, each in a forked child, and tell which markers appeared.

Usage: ``python prove.py JOBS.json`` where JOBS is a list of ``[loader, path, marker]``;
prints a JSON list of booleans (marker present after the load). The parent imports torch
(and joblib) once; every load runs in its own fork with a time limit, so one payload cannot
disturb the next.
"""

import json
import os
import sys


def load(loader: str, path: str) -> None:
    if loader == "torch":
        import torch

        torch.load(path, weights_only=False)
    elif loader == "pickle":
        import pickle

        with open(path, "rb") as f:
            pickle.load(f)
    elif loader == "joblib":
        import joblib

        joblib.load(path)
    elif loader in ("gzip_pickle", "lzma_pickle"):  # pickle.load(gzip.open(path)) and kin
        import gzip
        import lzma
        import pickle

        with (gzip.open if loader == "gzip_pickle" else lzma.open)(path) as f:
            pickle.load(f)
    elif loader == "zstd_pickle":
        import pickle

        import zstandard

        with open(path, "rb") as raw:
            pickle.loads(zstandard.ZstdDecompressor().stream_reader(raw).read())
    elif loader == "pt2":
        import torch

        torch.export.load(path)
    elif loader == "dcp":  # the generic DCP reader: BYTE_IO items go through torch.load(weights_only=False)
        import tempfile

        from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

        dcp_to_torch_save(path, os.path.join(tempfile.mkdtemp(), "out.pt"))
    else:
        raise ValueError(loader)


def main() -> None:
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    loaders = {j[0] for j in jobs}
    if loaders & {"torch", "dcp", "pt2"}:
        import torch  # noqa: F401
        import torch.distributed.checkpoint.format_utils  # noqa: F401
    if "joblib" in loaders:
        import joblib  # noqa: F401
    out = []
    for loader, path, marker in jobs:
        if os.path.exists(marker):
            os.unlink(marker)
        pid = os.fork()
        if pid == 0:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            import signal

            signal.alarm(60)
            try:
                load(loader, path)
            except BaseException:
                pass
            os._exit(0)
        os.waitpid(pid, 0)
        out.append(os.path.exists(marker))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
