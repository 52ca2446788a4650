"""`ckptlint server`: the language server lives behind the `lsp` extra."""

from __future__ import annotations

import sys


def main(argv) -> int:
    try:
        from ckptlint.lsp.server import main as serve
    except ImportError as exc:
        print(f"ckptlint: error: the language server needs the `lsp` extra "
              f"(in a clone of ckptlint: pip install '.[lsp]'): {exc}", file=sys.stderr)
        return 2
    return serve(argv)
