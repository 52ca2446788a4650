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
import re
import stat as stat_module
from dataclasses import dataclass
from typing import BinaryIO, Iterator, List, Optional, Tuple

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")


def is_url(path) -> bool:
    """``scheme://...`` (a Windows drive, ``C:\\``, has one letter and no ``//``)."""
    return isinstance(path, str) and _URL.match(path) is not None


@dataclass(frozen=True)
class Stat:
    size: int
    is_dir: bool = False
    etag: Optional[str] = None  # a version tag of a remote file (ETag, blob id), if the store gives one


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


# -- path arithmetic ---------------------------------------------------------------------


def _split(url: str) -> Tuple[str, str]:
    """(``scheme://``, the rest)."""
    m = _URL.match(url)
    assert m is not None
    return url[:m.end()], url[m.end():]


def abspath(path) -> str:
    path = os.fspath(path)
    return normpath(path) if is_url(path) else os.path.abspath(path)


def normpath(path: str) -> str:
    if not is_url(path):
        return os.path.normpath(path)
    scheme, rest = _split(path)
    return scheme + (posixpath.normpath(rest).lstrip("/") if rest.strip("/") else "")


def isabs(path: str) -> bool:
    return is_url(path) or os.path.isabs(path)


def join(path: str, *names: str) -> str:
    if not is_url(path):
        return os.path.join(path, *names)
    for name in names:
        path = name if is_url(name) else path.rstrip("/") + "/" + name.lstrip("/")
    return path


def dirname(path: str) -> str:
    if not is_url(path):
        return os.path.dirname(path)
    scheme, rest = _split(path.rstrip("/"))
    head = posixpath.dirname(rest)
    return scheme + (head if head else rest)  # the bucket (or host) is as far up as it goes


def basename(path: str) -> str:
    return posixpath.basename(path.rstrip("/")) if is_url(path) else os.path.basename(path)


def relpath(path: str, start: str) -> str:
    if not is_url(path) and not is_url(start):
        return os.path.relpath(path, start)
    if not (is_url(path) and is_url(start)) or _split(path)[0] != _split(start)[0]:
        raise ValueError(f"{path} is not below {start}")
    return posixpath.relpath("/" + _split(path)[1], "/" + _split(start)[1])
