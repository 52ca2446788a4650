"""One walk of a stdlib AST for the passes that read every node of a file (triage, the
project summary, save/load sites): `ast.walk`'s order, made once per tree and kept on it.
`ast.walk` drives two generators per node; over a 3,000-line file, three such walks cost
more than the parse."""

from __future__ import annotations

import ast
from typing import Dict, List, Tuple

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
