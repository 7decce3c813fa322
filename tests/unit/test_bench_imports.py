"""`make bench` is not part of `make test`, and its parts import their heavy pieces inside functions (moto, the
tansu test broker, the agent) so that one part does not pay for the others. A renamed helper then breaks the
benchmark only when someone runs it, minutes in: this resolves every such import now."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "ops" / "bench"


def _imports() -> list[tuple[str, str, int, str]]:
    found = []
    for path in sorted(BENCH.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found += [(path.name, node.module, node.lineno, alias.name) for alias in node.names]
    return found


def test_the_bench_parts_are_all_read() -> None:
    names = {p.name for p in BENCH.glob("*.py")}
    assert {"kafka.py", "zombies.py", "agent.py", "replay.py", "push.py"} <= names
    modules = {module for _, module, _, _ in _imports()}
    assert {"tests.kafka_broker", "moto.server", "ops.bench.common"} <= modules


def test_every_name_a_bench_part_imports_exists() -> None:
    missing = []
    for file, module, line, name in _imports():
        loaded = importlib.import_module(module)
        if name == "*" or hasattr(loaded, name):
            continue
        try:
            importlib.import_module(f"{module}.{name}")  # a submodule is fine
        except ModuleNotFoundError:
            missing.append(f"ops/bench/{file}:{line}: {module} has no {name}")
    assert missing == []
