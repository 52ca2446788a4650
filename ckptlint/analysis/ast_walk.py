"""Reading a stdlib AST fast, with the same results as the `ast` module's helpers.

`walk`: one walk for the passes that read every node of a file (triage, the project summary,
save/load sites), in `ast.walk`'s order, made once per tree and kept on it. `ast.walk`
drives two generators per node; over a 3,000-line file, three such walks cost more than the
parse. `segment`: `ast.get_source_segment`, which splits the whole text character by
character on every call (~15 ms for 3,000 lines)."""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from typing import Dict, List, Optional, Tuple

# ast._splitlines_no_ff: lines end at \r\n, \r or \n only (not at \f, \v, ...)
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")

_AST = ast.AST


def walk(tree: ast.AST) -> Tuple[List[ast.AST], Dict[ast.AST, ast.AST]]:
    """(every node of `tree` in ast.walk's breadth-first order, each node's parent)."""
    found = tree.__dict__.get("_ckptlint_walk")
    if found is not None:
        return found
    nodes: List[ast.AST] = [tree]
    parents: Dict[ast.AST, ast.AST] = {}
    append = nodes.append
    for node in nodes:  # grows while it is read: breadth first, like ast.walk's deque
        for name in node._fields:
            value = getattr(node, name, None)
            if type(value) is list:
                for item in value:
                    if isinstance(item, _AST):
                        parents[item] = node
                        append(item)
            elif isinstance(value, _AST):
                parents[value] = node
                append(value)
    tree.__dict__["_ckptlint_walk"] = found = (nodes, parents)
    return found


def forget(tree: ast.AST) -> None:
    """Drop the walk kept on `tree`: it holds the tree itself, a cycle that only the cyclic
    garbage collector would free (a tenth of an editor's re-lint)."""
    tree.__dict__.pop("_ckptlint_walk", None)


@lru_cache(maxsize=1)
def _lines(text: str) -> List[str]:
    """The lines of the text last asked about: a file's segments are asked one after another."""
    return _LINE.findall(text)


def segment(text: str, node: ast.AST) -> Optional[str]:
    """The source of `node` in `text`, as ast.get_source_segment(text, node) gives it."""
    try:
        if node.end_lineno is None or node.end_col_offset is None:
            return None
        first, last = node.lineno - 1, node.end_lineno - 1
        start, end = node.col_offset, node.end_col_offset
    except AttributeError:
        return None
    lines = _lines(text)
    if first == last:
        return lines[first].encode()[start:end].decode()
    return "".join([lines[first].encode()[start:].decode(), *lines[first + 1:last],
                    lines[last].encode()[:end].decode()])
