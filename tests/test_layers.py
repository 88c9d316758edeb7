"""The package's layers: every import of an atdata module points to the same or a lower layer.

Layers, low -> high (CLAUDE.md, "Layout"):

0. base: ``_errors``, ``_events``, ``_extras``, ``_files``, ``_lazy``, ``_types``, ``_logging``, ``_version``
1. ``_wire`` (arrays, fields, sample, payload, decode, schema_json)
2. ``_shards`` (tar, members, sources, writer)
3. ``manifest`` (manifests and queries over shard locations)
4. ``dataset``, ``lens``
5. ``stores``, ``providers``, ``index`` and the ``local``/``repository`` facades
6. ``atmosphere``, ``promote``, ``lexicons``, ``search``
7. top: ``atdata/__init__``, ``__main__``, ``_load``, ``_named``, ``_demo``, ``cli``, ``testing``, ``ray``, ``viewer``

Every import counts: module level, inside functions, under ``if TYPE_CHECKING:``, absolute and
relative, ``importlib.import_module("atdata...")`` string literals and the module strings of a
package's lazy ``_LAZY`` map. A new module must be given a layer in :data:`LAYERS` below.

Within a layer, module-level imports must not form a cycle (a function may import lazily).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "atdata"

# first component under ``atdata`` -> layer rank (higher may import lower, never the reverse)
LAYERS: dict[str, int] = {
    "_errors": 0,
    "_events": 0,
    "_extras": 0,
    "_files": 0,
    "_hooks": 0,
    "_lazy": 0,
    "_types": 0,
    "_logging": 0,
    "_version": 0,
    "_wire": 1,
    "_shards": 2,
    "manifest": 3,
    "dataset": 4,
    "lens": 4,
    "stores": 5,
    "providers": 5,
    "index": 5,
    "local": 5,
    "repository": 5,
    "_protocols": 5,
    "atmosphere": 6,
    "promote": 6,
    "lexicons": 6,
    "search": 6,
    "watch": 6,
    "_ingest": 6,
    "_load": 7,
    "_convert": 7,
    "_named": 7,
    "_demo": 7,
    "cli": 7,
    "testing": 7,
    "ray": 7,
    "viewer": 7,
    "__main__": 7,
}
TOP = 7  # the ``atdata`` package itself (its ``__init__``)

LAYER_NAMES = {
    0: "base",
    1: "_wire",
    2: "_shards",
    3: "manifest",
    4: "dataset/lens",
    5: "stores/providers/index",
    6: "atmosphere",
    7: "top",
}


@dataclass(frozen=True)
class Import:
    """One reference from a module of the package to a module of the package."""

    source: str  # dotted name of the importing module
    line: int
    target: str  # dotted name of the imported module
    how: str  # "import", "from", "import_module", "_LAZY"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def exists(dotted: str) -> bool:
    """Whether ``dotted`` (``atdata.x.y``) names a module or package of the source tree."""
    rel = Path(*dotted.split(".")[1:]) if "." in dotted else Path()
    base = SRC / rel
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def resolve_relative(source: str, package: bool, level: int, name: str | None) -> str:
    """Absolute name of ``from <level dots><name> import ...`` written in module ``source``."""
    parts = source.split(".")
    if not package:
        parts = parts[:-1]
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    return ".".join([*parts, name] if name else parts)


def rank(target: str) -> int | None:
    """Layer of module ``atdata.<first>...``; ``None`` for a module missing from :data:`LAYERS`."""
    parts = target.split(".")
    if len(parts) == 1:
        return TOP
    return LAYERS.get(parts[1])


def collect(path: Path) -> list[Import]:
    """Every reference to an atdata module made by the module at ``path``."""
    source = module_name(path)
    pkg = is_package(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []

    def add(line: int, target: str, how: str) -> None:
        if target == "atdata" or target.startswith("atdata."):
            found.append(Import(source, line, target, how))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(node.lineno, alias.name, "import")
        elif isinstance(node, ast.ImportFrom):
            base = (
                resolve_relative(source, pkg, node.level, node.module)
                if node.level
                else (node.module or "")
            )
            if not (base == "atdata" or base.startswith("atdata.")):
                continue
            # ``from atdata.x import y``: y is a submodule (import y) or a name of x (import x)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                add(node.lineno, sub if exists(sub) else base, "from")
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called == "import_module" and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    add(node.lineno, _lazy_target(source, pkg, arg.value), "import_module")
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            named = any(isinstance(t, ast.Name) and t.id == "_LAZY" for t in targets)
            if named and isinstance(node.value, ast.Dict):
                for value in node.value.values:
                    if isinstance(value, ast.Constant) and isinstance(value.value, str):
                        add(value.lineno, _lazy_target(source, pkg, value.value), "_LAZY")
    return found


def _lazy_target(source: str, pkg: bool, mod: str) -> str:
    """A module string as ``importlib.import_module(mod, package=<this package>)`` resolves it."""
    if not mod.startswith("."):
        return mod
    level = len(mod) - len(mod.lstrip("."))
    package = source if pkg else source.rpartition(".")[0]
    return resolve_relative(package, True, level, mod[level:] or None)


def module_level_imports(path: Path) -> set[str]:
    """The atdata modules ``path`` imports when it is imported (top-level statements only: not
    in functions, not under ``if TYPE_CHECKING:``), with the packages each implies."""
    source, pkg = module_name(path), is_package(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: set[str] = set()
    for node in tree.body:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = (
                resolve_relative(source, pkg, node.level, node.module)
                if node.level
                else (node.module or "")
            )
            names = [f"{base}.{a.name}" if exists(f"{base}.{a.name}") else base for a in node.names]
        for name in names:
            if name == "atdata" or name.startswith("atdata."):
                parts = name.split(".")
                out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    own_packages = {".".join(source.split(".")[:i]) for i in range(1, source.count(".") + 1)}
    return out - own_packages - {source}


def import_cycles(paths: list[Path]) -> list[list[str]]:
    """Cycles in the module-level import graph (each as a path that returns to its start)."""
    graph = {module_name(p): module_level_imports(p) for p in paths}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(mod: str) -> None:
        state[mod] = 1
        path.append(mod)
        for dep in sorted(graph.get(mod, ())):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep])
            elif dep not in state and dep in graph:
                visit(dep)
        path.pop()
        state[mod] = 2

    for mod in sorted(graph):
        if mod not in state:
            visit(mod)
    return cycles


def all_modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def upward_imports(paths: list[Path]) -> tuple[list[str], list[str]]:
    """(offenders: imports that point up, unknown: modules without a layer)."""
    offenders: list[str] = []
    unknown: set[str] = set()
    for path in paths:
        src_rank = rank(module_name(path))
        if src_rank is None:
            unknown.add(module_name(path))
            continue
        for imp in collect(path):
            dst_rank = rank(imp.target)
            if dst_rank is None:
                unknown.add(imp.target)
            elif dst_rank > src_rank:
                offenders.append(
                    f"{path.relative_to(SRC.parent.parent)}:{imp.line}: {imp.source} "
                    f"[{LAYER_NAMES[src_rank]}] -> {imp.target} [{LAYER_NAMES[dst_rank]}] ({imp.how})"
                )
    return offenders, sorted(unknown)


def test_every_module_has_a_layer():
    _, unknown = upward_imports(all_modules())
    assert unknown == [], (
        "modules without a layer; give each a rank in LAYERS (tests/test_layers.py) "
        "and CLAUDE.md's Layout section:\n  " + "\n  ".join(unknown)
    )


def test_imports_only_point_down():
    offenders, _ = upward_imports(all_modules())
    assert offenders == [], (
        f"{len(offenders)} import(s) point to a higher layer (move the code down, or pass the "
        "higher-layer object in through a Protocol/callable):\n  " + "\n  ".join(offenders)
    )


def test_no_import_cycles_at_module_level():
    """Within a layer too: importing any module never comes back to itself (the old data path
    was one cycle; functions may import lazily, but a module's top level must not loop)."""
    cycles = import_cycles(all_modules())
    assert cycles == [], "module-level import cycles:\n  " + "\n  ".join(
        " -> ".join(c) for c in cycles
    )


def test_the_cycle_check_finds_a_cycle(tmp_path, monkeypatch):
    pkg = tmp_path / "atdata"
    (pkg / "dataset").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "dataset" / "__init__.py").write_text("from atdata.dataset._a import A\n")
    (pkg / "dataset" / "_a.py").write_text("from atdata.dataset._b import B\nA = 1\n")
    (pkg / "dataset" / "_b.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from atdata.dataset._a import A\n"  # type-only: not a cycle
        "def f():\n"
        "    from atdata.dataset._a import A\n"  # lazy: not a cycle
        "from . import _c\n"
        "B = 2\n"
    )
    (pkg / "dataset" / "_c.py").write_text("from atdata.dataset._a import A\n")  # the cycle
    monkeypatch.setattr(sys.modules[__name__], "SRC", pkg)
    assert import_cycles(all_modules()) == [
        ["atdata.dataset._a", "atdata.dataset._b", "atdata.dataset._c", "atdata.dataset._a"]
    ]


def test_the_scan_sees_every_kind_of_import(tmp_path, monkeypatch):
    """The checker itself: each form of import is found and an upward one is reported."""
    pkg = tmp_path / "atdata"
    (pkg / "_wire").mkdir(parents=True)
    (pkg / "dataset").mkdir()
    for init in (pkg, pkg / "_wire", pkg / "dataset"):
        (init / "__init__.py").write_text("")
    (pkg / "dataset" / "_dataset.py").write_text("X = 1\n")
    (pkg / "_errors.py").write_text("")
    (pkg / "_wire" / "sample.py").write_text(
        "from __future__ import annotations\n"
        "import importlib\n"
        "from typing import TYPE_CHECKING\n"
        "from atdata._errors import X\n"  # down: fine
        "if TYPE_CHECKING:\n"
        "    from atdata.dataset import _dataset\n"  # up (type-only still counts)
        "def f():\n"
        "    from ..dataset._dataset import X\n"  # up, relative, inside a function
        "    import atdata.dataset._dataset\n"  # up, plain import
        "    return importlib.import_module('atdata.dataset')\n"  # up, by string
        "from atdata import Dataset\n"  # the top package
    )
    (pkg / "_wire" / "__init__.py").write_text("_LAZY = {'Dataset': 'atdata.dataset._dataset'}\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", pkg)
    offenders, unknown = upward_imports(all_modules())
    assert unknown == []
    got = sorted((o.split(":")[1], o.rsplit("(", 1)[1].rstrip(")")) for o in offenders)
    assert got == [
        ("1", "_LAZY"),
        ("10", "import_module"),
        ("11", "from"),
        ("6", "from"),
        ("8", "from"),
        ("9", "import"),
    ]


@pytest.mark.parametrize(
    ("source", "pkg", "level", "name", "expected"),
    [
        ("atdata.atmosphere._client", False, 1, "_cid", "atdata.atmosphere._cid"),
        ("atdata.atmosphere", True, 1, "_cid", "atdata.atmosphere._cid"),
        ("atdata.atmosphere._client", False, 2, "_errors", "atdata._errors"),
        ("atdata.cli._core", False, 2, None, "atdata"),
    ],
)
def test_relative_imports_resolve(source, pkg, level, name, expected):
    assert resolve_relative(source, pkg, level, name) == expected


# -- module size ------------------------------------------------------------------------------
MAX_MODULE_LINES = 600  # CLAUDE.md, "Layout": about 600 lines at most per module


def oversized_modules(paths: list[Path], limit: int = MAX_MODULE_LINES) -> list[str]:
    """``"atdata/x/_y.py: N lines"`` for each module of more than ``limit`` lines."""
    out = []
    for path in paths:
        with path.open(encoding="utf-8") as f:
            n = sum(1 for _ in f)
        if n > limit:
            out.append(f"{path.relative_to(SRC.parent)}: {n} lines")
    return out


def test_no_module_exceeds_600_lines():
    assert oversized_modules(all_modules()) == [], (
        f"modules over {MAX_MODULE_LINES} lines; split each by concept into private modules "
        "(CLAUDE.md, 'Layout')"
    )


def test_oversized_module_is_named_with_its_line_count(tmp_path, monkeypatch):
    pkg = tmp_path / "atdata"
    (pkg / "dataset").mkdir(parents=True)
    (pkg / "dataset" / "_big.py").write_text("x = 1\n" * 601)
    (pkg / "dataset" / "_edge.py").write_text("x = 1\n" * 600)
    (pkg / "__init__.py").write_text("")
    monkeypatch.setattr(sys.modules[__name__], "SRC", pkg)
    assert oversized_modules(all_modules()) == ["atdata/dataset/_big.py: 601 lines"]
