"""Writing files: fixes (only over the bytes they were computed from), and replacing a file so
that readers see the old bytes or the new, never half of them."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from pathlib import Path
from typing import Callable, Optional

from ckptlint.diagnostic import FIX_ERROR, IO_ERROR, Diagnostic, file_error


def replace_file(target: Path, data: bytes, prefix: str, suffix: str = ".tmp", sync: bool = False,
                 prepare: Optional[Callable[[str], None]] = None) -> None:
    """Write `data` to a temporary file beside `target` (same filesystem), let `prepare(tmp)`
    set its mode or owner, then os.replace it over `target`; the temporary file never
    outlives a failure."""
    import tempfile  # only runs that write import it (start-up time)

    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=Path(target).parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if sync:
                fh.flush()
                os.fsync(fh.fileno())
        if prepare is not None:
            prepare(tmp)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_fixed(path: Path, result) -> Optional[Diagnostic]:
    """Write a fixed file (an engine FileResult read by the workspace), or say why not. Refuses
    when the text would not encode back to the bytes it came from (outside the fix) or when the
    file changed since it was read."""
    src = result.source
    try:
        new = src.encode(result.fixed)
        same_outside = src.encode(result.original) == src.data
    except UnicodeError as exc:
        return file_error(FIX_ERROR, result.path, f"fixes not written: cannot encode as {src.encoding}: {exc}")
    if not same_outside:
        return file_error(FIX_ERROR, result.path, f"fixes not written: {src.encoding} does not round-trip this file's bytes")
    try:
        if Path(path).read_bytes() != src.data:
            return file_error(FIX_ERROR, result.path, "fixes not written: the file changed on disk during the run")
        write_atomic(path, new)
    except OSError as exc:
        return file_error(IO_ERROR, result.path, f"cannot write fixes: {exc.strerror or exc}")
    return None


def write_atomic(path: Path, data: bytes) -> None:
    """Temporary file in the same folder, same mode, then os.replace: all old or all new."""
    path = Path(path)
    target = path.resolve()
    st = target.stat()
    mode = st.st_mode & 0o7777

    def keep_mode_and_owner(tmp: str) -> None:
        os.chmod(tmp, mode)
        if hasattr(os, "chown") and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
            try:  # keep the owner too (root fixing a user's file)
                os.chown(tmp, st.st_uid, st.st_gid)
            except OSError:
                pass

    with _ctrl_c_after():
        replace_file(target, data, prefix=f".{target.name}.", suffix=".ckptlint-tmp", sync=True,
                     prepare=keep_mode_and_owner)


@contextlib.contextmanager
def _ctrl_c_after():
    """Hold a Ctrl-C until the write is done, so no temporary file is left behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    try:
        old = signal.signal(signal.SIGINT, lambda *a: caught.append(a))
    except ValueError:  # not the main interpreter
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if caught:
        if callable(old):
            old(*caught[0])  # the default handler raises KeyboardInterrupt here
        elif old == signal.SIG_DFL:
            os.kill(os.getpid(), signal.SIGINT)
