"""The emulator is Slack and nothing else: the sandbox's page and endpoints are built on it,
never the other way round (not even by an import inside a function)."""

from __future__ import annotations

import ast
from pathlib import Path

import bot.sandbox

SANDBOX = Path(bot.sandbox.__file__).parent
SLACK = (
    "emulator.py",
    "webapi.py",
    "faults.py",
    "blockkit.py",
    "delivery.py",
    "payloads.py",
    "state.py",
    "records.py",
    "actions.py",
    "views.py",
    "directory.py",
)
ABOVE = {"bot.sandbox.web", "bot.sandbox.endpoints"}


def imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_the_emulator_imports_nothing_of_the_page() -> None:
    for name in SLACK:
        assert imported(SANDBOX / name).isdisjoint(ABOVE), name
