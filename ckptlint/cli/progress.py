"""A one-line progress display on stderr for long runs in a terminal.

The CLI only creates one when stderr is a TTY and the output is text (never for JSON or
SARIF); it draws nothing during the first second, so short runs stay silent."""

from __future__ import annotations

import time
from typing import Optional

DELAY = 1.0  # seconds before the first draw
INTERVAL = 0.1  # at most ten redraws a second


class Progress:
    def __init__(self, stream, delay: Optional[float] = None):
        self.stream = stream
        self.start = time.monotonic()
        self.delay = DELAY if delay is None else delay
        self.last = 0.0
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.start < self.delay or (now - self.last < INTERVAL and done < total):
            return
        self.last = now
        width = 24
        filled = width * done // max(total, 1)
        line = f"\rckptlint: [{'#' * filled}{'.' * (width - filled)}] {done}/{total} files"
        self.stream.write(line)
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[2K")  # clear the line before the report
            self.stream.flush()
            self.drawn = False
