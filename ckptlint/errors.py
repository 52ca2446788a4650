"""Errors that end a run with exit code 2 (usage, configuration)."""

from __future__ import annotations


class UsageError(Exception):
    """Bad command line: exit 2, one line, no traceback."""


class PluginError(Exception):
    """A third-party rule that cannot be loaded or clashes with another: exit 2, one line."""


class ConfigError(Exception):
    """Bad configuration: exit 2 with a message naming the file and the key."""

    def __init__(self, path, message: str, key: str | None = None):
        self.path = str(path)
        self.key = key
        where = f"{self.path}: " + (f"`{key}`: " if key else "")
        super().__init__(where + message)
