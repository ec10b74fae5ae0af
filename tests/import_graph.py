"""The project's import graph between its own modules, read from the source with `ast`.

    python tests/import_graph.py            # one line per module: what it imports of ours
    python tests/import_graph.py --layers   # the same, folded to layers (preprocessing, mclmcf.model.network, ...)

tests/test_architecture.py holds the rule this graph must keep: imports go one way.
"""
from __future__ import annotations

import argparse
import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("preprocessing", "mclmcf")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_modules() -> dict[str, Path]:
    modules = {"app": ROOT / "app.py"}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            modules[module_name(path)] = path
    return modules


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """Our modules that `module` imports anywhere in its body (function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(module, path, node)
            names = [f"{target}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            # the longest prefix that is one of ours: `from mclmcf.training import data` -> mclmcf.training.data
            parts = name.split(".")
            for end in range(len(parts), 0, -1):
                candidate = ".".join(parts[:end])
                if candidate in known:
                    if candidate != module:
                        found.add(candidate)
                    break
    return found


def graph() -> dict[str, set[str]]:
    modules = source_modules()
    known = set(modules)
    return {name: imports_of(name, path, known) for name, path in modules.items()}


def layer(module: str) -> str:
    """preprocessing, mclmcf.<subpackage>, mclmcf (top-level entry modules) or app."""
    parts = module.split(".")
    if parts[0] != "mclmcf":
        return parts[0]
    if len(parts) >= 2 and (ROOT / "mclmcf" / parts[1]).is_dir():
        return f"mclmcf.{parts[1]}"
    return "mclmcf"


def layer_graph() -> dict[str, set[str]]:
    folded: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph().items():
        folded[layer(module)] |= {layer(t) for t in targets} - {layer(module)}
    return dict(folded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", action="store_true", help="fold modules into layers")
    edges = layer_graph() if parser.parse_args().layers else graph()
    for name in sorted(edges):
        print(f"{name:40s} -> {', '.join(sorted(edges[name])) or '-'}")


if __name__ == "__main__":
    main()
