"""URLs as paths: telling one from a local path, their path arithmetic, how a remote file
is described (Stat) and how reading one fails (RemoteError). Shared by source.py (which
dispatches) and remote.py (which reads URLs); imports nothing heavy."""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from typing import Optional, Tuple

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")


def is_url(path) -> bool:
    """``scheme://...`` (a Windows drive, ``C:\\``, has one letter and no ``//``)."""
    return isinstance(path, str) and _URL.match(path) is not None


@dataclass(frozen=True)
class Stat:
    size: int
    is_dir: bool = False
    etag: Optional[str] = None  # a version tag of a remote file (ETag, blob id), if the store gives one


@dataclass
class RemoteSettings:
    """How URLs are read (set by `ckptlint verify --timeout/--max-fetch`)."""

    timeout: float = 60.0  # seconds one request may wait (to connect, or for more bytes)
    max_fetch: int = 256 << 20  # bytes fetched from one file at most; past that it is not checked


SETTINGS = RemoteSettings()


class RemoteError(OSError):
    """A URL could not be read (remote.py); ``str()`` says why and what to do. Nothing read
    from the file before the fault counts: the reader reports this alone."""

    def __init__(self, text: str):
        super().__init__(text)
        self.strerror = text

    def __str__(self) -> str:
        return self.strerror


class RemoteMissing(RemoteError, FileNotFoundError):
    """A URL that names nothing (HTTP 404, no such key): reported as a missing local file is."""


def split_url(url: str) -> Tuple[str, str]:
    """(``scheme://``, the rest)."""
    m = _URL.match(url)
    assert m is not None
    return url[:m.end()], url[m.end():]


def join(path: str, *names: str) -> str:
    if not is_url(path):
        return os.path.join(path, *names)
    for name in names:
        path = name if is_url(name) else path.rstrip("/") + "/" + name.lstrip("/")
    return path


def basename(path: str) -> str:
    return posixpath.basename(path.rstrip("/")) if is_url(path) else os.path.basename(path)
