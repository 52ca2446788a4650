"""Where a checkpoint's bytes come from: a local path or a URL (``s3://``, ``gs://``,
``https://``, ``hf://``, any fsspec protocol). Every open, stat, listing and existence test
of the reader and of ``verify`` goes through here, so one code path reads both.

- Local paths: the builtin ``open`` (a real file: the pickle scanner maps it with ``mmap``)
  and ``os``; no wrapper, so local reads cost what they cost before.
- URLs: ``remote.py`` (the ``remote`` extra, fsspec), imported only when a URL is met:
  a seekable file object reading by byte ranges, counting what it fetched.

Path arithmetic (``join``, ``dirname``, ``abspath``...) is here too: ``os.path`` would
mangle ``s3://bucket/key`` (``normpath`` makes it ``s3:/bucket/key``).
"""

from __future__ import annotations

import os
import posixpath
import stat as stat_module
from typing import BinaryIO, Iterator, List

from ckptlint.reader.urls import (  # noqa: F401 - the names callers use through source
    SETTINGS, RemoteError, RemoteMissing, RemoteSettings, Stat, split_url, basename, is_url, join,
)


def remote_report() -> List[str]:
    """One line per URL read in this run (since ``reset_remote``): bytes fetched, requests."""
    import sys

    remote = sys.modules.get("ckptlint.reader.remote")
    if remote is None:
        return []
    return [remote.describe(url, count) for url, count in sorted(remote.FETCHED.items()) if count.requests]


def reset_remote() -> None:
    """Forget what the last run fetched and learnt of remote files (a new run reads anew)."""
    import sys

    remote = sys.modules.get("ckptlint.reader.remote")
    if remote is not None:
        remote.reset()


def _remote():
    from ckptlint.reader import remote  # fsspec, lazily: the static pass and local reads never need it

    return remote


# -- reading -----------------------------------------------------------------------------


def open_file(path: str) -> BinaryIO:
    """A seekable binary file object. Raises OSError (FileNotFoundError, PermissionError,
    IsADirectoryError; for a URL, ``remote.RemoteError`` naming the fault)."""
    if is_url(path):
        return _remote().open_file(path)
    return open(path, "rb")


def stat(path: str) -> Stat:
    """Size and kind (and a remote file's version tag). Raises OSError."""
    if is_url(path):
        return _remote().stat(path)
    st = os.stat(path)
    return Stat(st.st_size, stat_module.S_ISDIR(st.st_mode))


def exists(path: str) -> bool:
    try:
        stat(path)
    except (OSError, ValueError):
        return False
    return True


def isfile(path: str) -> bool:
    if not is_url(path):
        return os.path.isfile(path)
    try:
        return not stat(path).is_dir
    except (OSError, ValueError):
        return False


def isdir(path: str) -> bool:
    if not is_url(path):
        return os.path.isdir(path)
    try:
        return stat(path).is_dir
    except (OSError, ValueError):
        return False


def getsize(path: str) -> int:
    return stat(path).size


def listdir(path: str) -> List[str]:
    """The names in a folder (for a URL: the store's listing, one level). Raises OSError."""
    if is_url(path):
        return _remote().listdir(path)
    return os.listdir(path)


def walk(top: str) -> Iterator[Tuple[str, List[str], List[str]]]:
    """``os.walk`` (top-down; prune by editing the list of folder names in place)."""
    if not is_url(top):
        yield from os.walk(top)
        return
    yield from _remote().walk(top)


def glob(pattern: str) -> List[str]:
    """The paths a pattern (``**`` recursive) matches."""
    if is_url(pattern):
        return _remote().glob(pattern)
    import glob as glob_module

    return glob_module.glob(pattern, recursive=True)


# -- path arithmetic (join, basename, is_url: urls.py) --------------------------------


def abspath(path) -> str:
    path = os.fspath(path)
    return normpath(path) if is_url(path) else os.path.abspath(path)


def normpath(path: str) -> str:
    if not is_url(path):
        return os.path.normpath(path)
    scheme, rest = split_url(path)
    # a web server's folder is its URL with a trailing `/` (remote.py): keep it there
    folder = "/" if scheme.startswith("http") and rest.endswith("/") and rest.strip("/") else ""
    return scheme + (posixpath.normpath(rest).lstrip("/") + folder if rest.strip("/") else "")


def isabs(path: str) -> bool:
    return is_url(path) or os.path.isabs(path)


def dirname(path: str) -> str:
    if not is_url(path):
        return os.path.dirname(path)
    scheme, rest = split_url(path.rstrip("/"))
    head = posixpath.dirname(rest)
    return scheme + (head if head else rest)  # the bucket (or host) is as far up as it goes


def relpath(path: str, start: str) -> str:
    if not is_url(path) and not is_url(start):
        return os.path.relpath(path, start)
    if not (is_url(path) and is_url(start)) or split_url(path)[0] != split_url(start)[0]:
        raise ValueError(f"{path} is not below {start}")
    return posixpath.relpath("/" + split_url(path)[1], "/" + split_url(start)[1])
