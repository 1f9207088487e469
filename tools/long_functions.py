"""List functions longer than N lines (default 50) in embedlab/, plugins/ and datasets/.

Length is ``end_lineno - lineno + 1`` of the ``def`` node (decorators excluded, docstring included).
Usage: ``python tools/long_functions.py [N] [PATH ...]``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATHS = ("embedlab", "plugins", "datasets")


def function_lengths(path: Path):
    """Yield (qualified name, first line, length) for every function in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                yield name, child.lineno, child.end_lineno - child.lineno + 1
                yield from walk(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)

    yield from walk(tree, "")


def long_functions(limit: int, paths=DEFAULT_PATHS):
    """Return [(length, 'file:line', name)] for functions over ``limit`` lines, longest first."""
    found = []
    for base in paths:
        base = ROOT / base
        for path in [base] if base.is_file() else sorted(base.rglob("*.py")):
            for name, line, length in function_lengths(path):
                if length > limit:
                    found.append((length, f"{path.relative_to(ROOT)}:{line}", name))
    return sorted(found, key=lambda row: (-row[0], row[1]))


def main(argv: list[str]) -> int:
    limit = int(argv[0]) if argv else 50
    paths = argv[1:] or DEFAULT_PATHS
    for length, where, name in long_functions(limit, paths):
        print(f"{length:4d}  {where}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
