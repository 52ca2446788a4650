"""Checkpoints read where they live (``s3://``, ``gs://``, ``https://``, ``hf://``, any fsspec
protocol), by byte ranges: the reader asks for the few kilobytes it needs (a zip's central
directory and pickles, a safetensors header, a DCP ``.metadata``), never for tensor bytes.

Imported only when a URL is met (source.py); needs fsspec and the store's own package
(s3fs, gcsfs, huggingface_hub, aiohttp for http): the ``remote`` extra. Credentials come
from where those packages look for them (AWS_* and ~/.aws, gcloud, HF_TOKEN, fsspec's
config); nothing is stored.

Every network fault is a ``RemoteError`` (an OSError, so the reader's own handling applies)
whose text says what happened and what to do: a timeout, access denied, a missing file
(``RemoteMissing``, a FileNotFoundError: the same finding as a missing local file), a server
that ignores byte ranges (its answer is not read, so a whole file is never downloaded), a
file that changed between two reads (its ETag or size), a fetch budget spent.

Range reads pin the version first seen: http(s) sends ``If-Match`` with the ETag and checks
the answer's ETag and total size; s3fs sends ``IfMatch`` itself; hf:// reads the commit the
path resolved to.
"""

from __future__ import annotations

import bisect
import io
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ckptlint.reader.urls import SETTINGS, RemoteError, RemoteMissing, Stat, basename, is_url, join

MIN_READAHEAD = 16 << 10  # a random read fetches at least this much (a zip record's header and name)
MAX_READAHEAD = 8 << 20  # reading on where the last read ended doubles the fetch, up to this
MAX_REQUEST = 8 << 20  # one request's bytes at most, so a timeout bounds each request
VIEW_WINDOW = 1 << 20


@dataclass
class Fetched:
    size: int
    bytes: int = 0
    requests: int = 0


# per run (reset by verify): what was fetched from each URL, and what stat/listing learnt
FETCHED: Dict[str, Fetched] = {}
_STATS: Dict[str, Stat] = {}
_CACHES: Dict[str, "Pieces"] = {}


def reset() -> None:
    FETCHED.clear()
    _STATS.clear()
    _FOLDERS.clear()
    _CACHES.clear()


MISSING_TEXT = "file does not exist"
CREDENTIALS = ("credentials come from your usual environment (AWS_* or ~/.aws, gcloud, HF_TOKEN, "
               "fsspec config): check they allow reading it")


def _status_error(status: int, what: str = "") -> RemoteError:
    if status == 404:
        return RemoteMissing(MISSING_TEXT)
    if status in (401, 403):
        return RemoteError(f"access denied (HTTP {status}): {CREDENTIALS}")
    if status == 412:
        return _changed("the server refused the ETag first seen (HTTP 412)")
    return RemoteError(f"the server answered HTTP {status}{what}: retry later, or check the URL")


def _changed(why: str) -> RemoteError:
    return RemoteError(f"the file changed while it was read ({why}): check it again once it is "
                       "written or uploaded")


def _timeout(start: int, end: int) -> RemoteError:
    return RemoteError(f"timed out (no answer within {SETTINGS.timeout:g} s for bytes {start}-{end}): "
                       "retry, or give more time with `ckptlint verify --timeout SECONDS`")


def _fault(exc: BaseException, start: int = 0, end: int = 0) -> RemoteError:
    """The RemoteError for whatever a store's client raised."""
    import asyncio
    import socket

    if isinstance(exc, RemoteError):
        return exc
    name = type(exc).__name__
    if isinstance(exc, (asyncio.TimeoutError, socket.timeout, TimeoutError)) or "Timeout" in name:
        return _timeout(start, end)
    if name == "FileExpired":  # s3fs: the object's ETag changed
        return _changed("its ETag changed")
    status = _status(exc)
    if isinstance(status, int) and status >= 400:
        return _status_error(status)
    if isinstance(exc, FileNotFoundError):
        return RemoteMissing(MISSING_TEXT)
    if isinstance(exc, PermissionError):
        return RemoteError(f"access denied: {CREDENTIALS}")
    if isinstance(exc, ImportError):
        return _missing_package(exc)
    text = str(exc).strip() or name
    return RemoteError(f"cannot read it ({name}: {text[:200]}): retry, or check the URL and the network")


def _status(exc: BaseException) -> Optional[int]:
    """The HTTP status behind an exception or the exceptions it was raised from (fsspec's
    http `info` turns a 403 into a FileNotFoundError raised from the client's error)."""
    seen = 0
    while exc is not None and seen < 5:
        status = getattr(exc, "status", None) or getattr(exc, "status_code", None)
        response = getattr(exc, "response", None)
        if status is None and response is not None:
            status = getattr(response, "status_code", None)
            if status is None and isinstance(response, dict):  # botocore's ClientError
                status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(status, int):
            return status
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def _missing_package(exc: BaseException) -> RemoteError:
    return RemoteError(f"reading URLs needs the `remote` extra ({exc}): pip install 'ckptlint[remote]'")


# -- the store ---------------------------------------------------------------------------


_FS: Dict[Tuple[str, str], Any] = {}


def _http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def _fs(url: str):
    """(fsspec filesystem, its path for the URL)."""
    try:
        import fsspec
        from fsspec.core import split_protocol
    except ImportError as exc:
        raise _missing_package(exc) from None
    protocol, rest = split_protocol(url)
    key = (protocol or "", rest.split("/", 1)[0])
    if key not in _FS:
        try:
            cls = fsspec.get_filesystem_class(protocol)
            _FS[key] = cls(**_options(protocol or ""))
        except ImportError as exc:
            raise _missing_package(exc) from None
        except Exception as exc:  # noqa: BLE001 - a store's client that cannot start (bad config)
            raise _fault(exc) from None
    fs = _FS[key]
    return fs, (url if _http(url) else fs._strip_protocol(url))


def _options(protocol: str) -> Dict[str, Any]:
    """Timeouts in each client's own terms; everything else (credentials, endpoints) is the
    user's configuration, which fsspec and the client read themselves."""
    t = SETTINGS.timeout
    if protocol in ("http", "https"):
        import aiohttp

        return {"client_kwargs": {"timeout": aiohttp.ClientTimeout(total=None, sock_connect=t, sock_read=t)}}
    if protocol in ("s3", "s3a"):
        return {"config_kwargs": {"connect_timeout": t, "read_timeout": t, "retries": {"max_attempts": 2}}}
    return {}


def _call(fs, method: str, *args, start: int = 0, end: int = 0, **kwargs):
    """A filesystem call, its faults as RemoteError; async filesystems are given the timeout."""
    if getattr(fs, "async_impl", False):
        kwargs["timeout"] = SETTINGS.timeout * 2  # the client's own per-socket timeouts come first
    try:
        return getattr(fs, method)(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - every client raises its own kinds
        raise _fault(exc, start, end) from None


def stat(url: str) -> Stat:
    if _http(url) and (url.endswith("/") or url in _FOLDERS):
        return Stat(0, True)
    url = url.rstrip("/")
    known = _STATS.get(url)
    if known is not None:
        return known
    fs, path = _fs(url)
    st = _stat_of(_call(fs, "info", path))
    _STATS[url] = st
    return st


# http(s) URLs of folders: given or listed with a trailing `/` (a web server's index page
# lists the folder); any other http(s) URL is a file
_FOLDERS: set = set()


def _stat_of(info: dict) -> Stat:
    is_dir = info.get("type") == "directory"
    size = info.get("size") or 0
    etag = None
    for key in ("ETag", "etag", "generation", "blob_id"):
        if info.get(key):
            etag = str(info[key])
            break
    lfs = info.get("lfs")
    if isinstance(lfs, dict) and lfs.get("sha256"):
        etag = str(lfs["sha256"])
    return Stat(int(size), is_dir, etag)


def listdir(url: str) -> List[str]:
    return [name for name, _ in _list(url)]


def _list(url: str) -> List[Tuple[str, bool]]:
    """(name, is a folder) of a folder's entries; their stats are kept for the run."""
    url = url.rstrip("/")
    fs, path = _fs(url)
    entries = _call(fs, "ls", path + ("/" if _http(url) else ""), detail=True)
    out = []
    for info in entries:
        name = str(info.get("name", "")).rstrip("/")
        full = name if is_url(name) else fs.unstrip_protocol(name)
        if _http(url) and not full.startswith(url + "/"):
            continue  # an index page also links to its parent and elsewhere
        base = basename(full)
        if not base or full.rstrip("/") == url:
            continue
        st = _stat_of(info)
        if _http(url) and str(info.get("name", "")).endswith("/"):
            st = Stat(0, True)
            _FOLDERS.add(join(url, base))
        if st.is_dir or info.get("size") is not None:  # a web index page gives no sizes
            _STATS[join(url, base)] = st
        out.append((base, st.is_dir))
    return sorted(set(out))


def walk(top: str) -> Iterator[Tuple[str, List[str], List[str]]]:
    """os.walk over a remote folder (top-down; prune by editing the folder names). A
    listing that fails below the top is skipped, as os.walk skips it; the top's raises."""
    if _http(top) and top.endswith("/"):
        _FOLDERS.add(top.rstrip("/"))
    top = top.rstrip("/")
    pending = [top]
    while pending:
        folder = pending.pop()
        try:
            entries = _list(folder)
        except RemoteError:
            if folder == top:
                raise
            continue
        dirs = [n for n, d in entries if d]
        files = [n for n, d in entries if not d]
        yield folder, dirs, files
        pending.extend(join(folder, d) for d in reversed(dirs))


def glob(pattern: str) -> List[str]:
    fs, path = _fs(pattern)
    found = _call(fs, "glob", path)
    return sorted(p if is_url(p) else fs.unstrip_protocol(p) for p in found)


# -- reading by ranges -------------------------------------------------------------------


def open_file(url: str) -> "RangeFile":
    """A file object over the URL's bytes; every file object of one URL in a run shares one
    cache of the pieces fetched, so the folder walk's sniff and the read fetch once."""
    st = stat(url)
    if st.is_dir:
        raise IsADirectoryError(21, "Is a directory")
    cache = _CACHES.get(url)
    if cache is None:
        fs, path = _fs(url)
        cache = _CACHES[url] = Pieces(url, st.size, _fetcher(fs, url, path, st))
    return RangeFile(cache)


def _fetcher(fs, url: str, path: str, st: Stat) -> Callable[[int, int], bytes]:
    if _http(url):
        return lambda start, end: _http_range(fs, url, start, end, st)
    handle: List[Any] = []

    def fetch(start: int, end: int) -> bytes:
        if not handle:  # opened on first read: a DCP shard with no bytes item is never opened
            handle.append(_call(fs, "open", path, "rb", cache_type="none", start=start, end=end))
        try:
            return handle[0]._fetch_range(start, end)
        except Exception as exc:  # noqa: BLE001
            raise _fault(exc, start, end) from None

    return fetch


def _http_range(fs, url: str, start: int, end: int, st: Stat) -> bytes:
    """GET bytes [start, end) through fsspec's aiohttp session (its headers and auth): only
    an answer of exactly those bytes (206) of the version first seen is read."""
    from fsspec.asyn import sync

    async def get() -> bytes:
        session = await fs.set_session()
        kwargs = dict(fs.kwargs)
        headers = dict(kwargs.pop("headers", None) or {})
        headers["Range"] = f"bytes={start}-{end - 1}"
        if st.etag:
            headers["If-Match"] = st.etag
        async with session.get(fs.encode_url(url), headers=headers, **kwargs) as r:
            if r.status == 200:  # the whole file is coming: stop here
                raise RemoteError("the server ignores byte ranges (it answered a range request with the "
                                  "whole file): not downloaded, so not checked")
            if r.status != 206:
                raise _status_error(r.status)
            total = _range_total(r.headers.get("Content-Range", ""))
            tag = r.headers.get("ETag")
            if total is not None and total != st.size:
                raise _changed(f"its size was {st.size} bytes, now {total}")
            if st.etag and tag and tag != st.etag:
                raise _changed(f"ETag {st.etag} became {tag}")
            chunks, got = [], 0
            while got < end - start:
                chunk = await r.content.read(min(1 << 20, end - start - got))
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
            return b"".join(chunks)

    try:
        return sync(fs.loop, get, timeout=SETTINGS.timeout * 2)
    except Exception as exc:  # noqa: BLE001
        raise _fault(exc, start, end) from None


def _range_total(header: str) -> Optional[int]:
    m = re.fullmatch(r"\s*bytes\s+\d+-\d+/(\d+)\s*", header)
    return int(m.group(1)) if m else None


class Pieces:
    """The pieces of one remote file fetched in this run, and how more are fetched: a read
    becomes range requests for what is not here yet (counted in FETCHED). A random read
    fetches MIN_READAHEAD bytes at least; reading on where the last fetch ended doubles it
    (a long pickle costs few requests); a request is at most MAX_REQUEST bytes."""

    def __init__(self, url: str, size: int, fetch: Callable[[int, int], bytes]):
        self.url = url
        self.size = size
        self._fetch_range = fetch
        self._starts: List[int] = []
        self._pieces: Dict[int, bytes] = {}
        self._last_end = -1
        self._readahead = MIN_READAHEAD
        self.count = FETCHED.setdefault(url, Fetched(size))

    def pread(self, offset: int, n: int) -> bytes:
        end = min(offset + n, self.size)
        parts = []
        pos = offset
        while pos < end:
            i = bisect.bisect_right(self._starts, pos) - 1
            if i >= 0:
                s = self._starts[i]
                piece = self._pieces[s]
                if pos < s + len(piece):
                    take = piece[pos - s:min(end, s + len(piece)) - s]
                    parts.append(take)
                    pos += len(take)
                    continue
            after = self._starts[i + 1] if i + 1 < len(self._starts) else self.size
            self._fill(pos, min(max(end, pos + self._ahead(pos)), after, self.size))
        return b"".join(parts)

    def _ahead(self, pos: int) -> int:
        self._readahead = min(self._readahead * 2, MAX_READAHEAD) if pos == self._last_end else MIN_READAHEAD
        return self._readahead

    def _fill(self, start: int, end: int) -> None:
        while start < end:
            stop = min(end, start + MAX_REQUEST)
            if self.count.bytes + (stop - start) > SETTINGS.max_fetch:
                raise RemoteError(f"not checked past {SETTINGS.max_fetch >> 20} MiB fetched (the "
                                  "`--max-fetch` limit of one file): raise it to read this file's pickles")
            data = self._fetch_range(start, stop)
            self.count.bytes += len(data)
            self.count.requests += 1
            if len(data) != stop - start:
                raise _changed(f"bytes {start}-{stop} of a {self.size}-byte file came back as {len(data)}")
            bisect.insort(self._starts, start)
            self._pieces[start] = data
            self._last_end = stop
            start = stop


class RangeFile(io.RawIOBase):
    """A read-only, seekable file object over a remote file's Pieces (no file descriptor:
    the pickle scanner reads it through ``byte_view``)."""

    def __init__(self, pieces: Pieces):
        super().__init__()
        self.pieces = pieces
        self.url = pieces.url
        self.size = pieces.size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        raise io.UnsupportedOperation("a remote file has no file descriptor")

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self._pos
        data = self.pieces.pread(self._pos, n)
        self._pos += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def byte_view(self) -> "ByteView":
        """The whole file as a bytes-like view for the pickle scanner (pickle_scan._buffer)."""
        return ByteView(self.pieces)


class ByteView:
    """bytes-like access to a remote file's Pieces (slices, ``find``, ``len``), as the pickle scanner
    reads an ``mmap``: a window of the file is kept, the cache behind it does the rest."""

    def __init__(self, f: Pieces):
        self.f = f
        self._lo = 0
        self._buf = b""

    def __len__(self) -> int:
        return self.f.size

    def close(self) -> None:
        pass

    def __getitem__(self, key):
        if not isinstance(key, slice) or key.step not in (None, 1):
            if isinstance(key, int):
                return self[key:key + 1][0]
            raise TypeError("ByteView supports plain slices")
        start, stop, _ = key.indices(self.f.size)
        lo = self._lo
        if lo <= start and stop <= lo + len(self._buf):
            return self._buf[start - lo:stop - lo]
        if stop - start > VIEW_WINDOW:
            return self.f.pread(start, stop - start)
        self._buf = self.f.pread(start, max(VIEW_WINDOW, stop - start))
        self._lo = start
        return self._buf[:max(stop - start, 0)]

    def find(self, sub: bytes, start: int = 0, end: Optional[int] = None) -> int:
        end = self.f.size if end is None else min(end, self.f.size)
        pos = start
        while pos < end:
            stop = min(end, pos + VIEW_WINDOW)
            chunk = self[pos:min(end, stop + len(sub) - 1)]
            at = chunk.find(sub)
            if at >= 0:
                return pos + at
            pos = stop
        return -1


def describe(url: str, count: Fetched) -> str:
    """The --verbose line of one file: what was fetched, against its size."""
    share = f" ({100 * count.bytes / count.size:.3g}% of {_size(count.size)})" if count.size else ""
    plural = "s" if count.requests != 1 else ""
    return f"{url}: fetched {_size(count.bytes)} in {count.requests} request{plural}{share}"


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} bytes"

