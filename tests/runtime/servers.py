"""Servers the remote-verify tests start on 127.0.0.1: a small HTTP file server with byte
ranges (and the faults a real one shows), and moto's S3 server. Both stop with the test."""

from __future__ import annotations

import html
import os
import pathlib
import re
import threading
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict


class Faults:
    """What the server does wrong, by URL path (`/dir/file.pt`): "403", "404", "ignore-ranges",
    "stall" (never answers: a client timeout is the only way out), or "change-after-N" (the
    file's last byte flips after N range answers, so its ETag changes mid-read). `no-if-match`
    makes the server ignore If-Match, as many do."""

    def __init__(self):
        self.by_path: Dict[str, str] = {}
        self.honour_if_match = True


class RangeServer:
    def __init__(self, root: pathlib.Path):
        self.root = pathlib.Path(root)
        self.faults = Faults()
        self.sent: Counter = Counter()  # body bytes sent, by URL path
        self.requests: Counter = Counter()
        self._release = threading.Event()  # lets stalled handlers go at shutdown
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                server._answer(self, head=True)

            def do_GET(self):
                server._answer(self, head=False)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> "RangeServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=30)

    # -- answers ---------------------------------------------------------------------

    def _answer(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        path = urllib.parse.unquote(urllib.parse.urlsplit(h.path).path)
        fault = self.faults.by_path.get(path.rstrip("/") or "/", "")
        self.requests[path] += 1
        if fault == "stall":
            self._release.wait(600)
            return
        if fault in ("403", "404"):
            return self._plain(h, int(fault), b"no\n", head)
        local = self.root / path.lstrip("/")
        if not local.resolve().is_relative_to(self.root.resolve()) or not local.exists():
            return self._plain(h, 404, b"not found\n", head)
        if local.is_dir():
            return self._index(h, path, local, head)
        stat = local.stat()
        etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
        size = stat.st_size
        want = h.headers.get("If-Match")
        if want and self.faults.honour_if_match and want != etag:
            return self._plain(h, 412, b"precondition failed\n", head)
        ranged = h.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", ranged or "")
        if m and fault != "ignore-ranges" and not head:
            start, end = int(m.group(1)), min(int(m.group(2) or size - 1), size - 1)
            if start >= size:
                return self._plain(h, 416, b"", head)
            with open(local, "rb") as f:
                f.seek(start)
                body = f.read(end - start + 1)
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            h.send_header("Content-Length", str(len(body)))
            h.send_header("ETag", etag)
            h.end_headers()
            self._send(h, path, body)
            self._maybe_change(path, local, fault)
            return
        h.send_response(200)
        h.send_header("Content-Length", str(size))
        h.send_header("ETag", etag)
        if fault != "ignore-ranges":
            h.send_header("Accept-Ranges", "bytes")
        h.end_headers()
        if head:
            return
        with open(local, "rb") as f:  # the whole file, as a server that ignores ranges sends it
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                try:
                    self._send(h, path, chunk)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client stopped reading: what it was sent is counted

    def _maybe_change(self, path: str, local: pathlib.Path, fault: str) -> None:
        m = re.fullmatch(r"change-after-(\d+)", fault)
        if m and self.requests[path] > int(m.group(1)):
            self.faults.by_path.pop(path, None)  # once
            data = bytearray(local.read_bytes())
            data[-1] ^= 1
            local.write_bytes(bytes(data) + b"\0")  # another size and another ETag
            os.utime(local, ns=(local.stat().st_mtime_ns + 10**9,) * 2)

    def _send(self, h, path: str, body: bytes) -> None:
        h.wfile.write(body)
        self.sent[path] += len(body)

    def _plain(self, h, status: int, body: bytes, head: bool) -> None:
        h.send_response(status)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head:
            h.wfile.write(body)

    def _index(self, h, path: str, local: pathlib.Path, head: bool) -> None:
        """A folder's index page, links as `python -m http.server` writes them."""
        if not path.endswith("/"):
            h.send_response(301)
            h.send_header("Location", path + "/")
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        links = [f'<a href="{urllib.parse.quote(p.name)}{"/" if p.is_dir() else ""}">{html.escape(p.name)}</a>'
                 for p in sorted(local.iterdir())]
        body = ("<html><body><a href=\"../\">..</a>\n" + "\n".join(links) + "</body></html>\n").encode()
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head:
            h.wfile.write(body)


def moto_server():
    """moto's S3 API server on a free port of 127.0.0.1, or None when moto is missing."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        return None
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    return server


def moto_url(server) -> str:
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}"


def upload(s3_endpoint: str, bucket: str, root: pathlib.Path, prefix: str = "") -> None:
    """Copy a local tree into a bucket (created if missing) with boto3."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    try:
        client.create_bucket(Bucket=bucket)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    for path in sorted(pathlib.Path(root).rglob("*")):
        if path.is_file():
            key = (prefix + "/" if prefix else "") + path.relative_to(root).as_posix()
            client.upload_file(str(path), bucket, key)


