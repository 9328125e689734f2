"""The project's rules, checked: the import-linter contracts in `.importlinter` (documented in
docs/architecture.md), and that code and docs cite only documents inside the repository."""

from __future__ import annotations

import configparser
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONTRACTS = ROOT / ".importlinter"


def _private_core_modules() -> set[str]:
    """Each module of `reapi` whose dotted name has a private segment, cut at that segment."""
    found = set()
    for path in (ROOT / "src" / "reapi").rglob("*.py"):
        parts = path.relative_to(ROOT / "src").with_suffix("").parts
        for depth, part in enumerate(parts[1:], start=1):
            if part.startswith("_") and part != "__init__":
                found.add(".".join(parts[: depth + 1]))
                break
    return found


def test_the_import_contracts_hold():
    lint = pathlib.Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), str(CONTRACTS)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_the_gateway_is_kept_off_every_private_module_of_the_core():
    config = configparser.ConfigParser()
    config.read(CONTRACTS)
    contract = config["importlinter:contract:gateway-uses-public-core"]
    listed = set(contract["forbidden_modules"].split())
    assert listed == _private_core_modules(), "update .importlinter for the new private modules"


def test_the_core_interface_names_only_what_it_imports():
    import reapi.core

    assert sorted(reapi.core.__all__) == sorted(
        name for name in vars(reapi.core) if not name.startswith("__") and name != "annotations"
    )


def _cited_files() -> list[pathlib.Path]:
    roots = ["src", "docs", "bench", "examples", "tests"]
    files = [ROOT / name for name in ("README.md", "CHANGELOG.md", "Makefile", "pyproject.toml")]
    for root in roots:
        files += [
            path
            for path in (ROOT / root).rglob("*")
            if path.is_file() and path.suffix in {".py", ".md", ".html", ".toml", ".txt", ".yml"}
        ]
    return files


def test_code_and_docs_cite_documents_inside_the_repository_only():
    outside = "../" + "shared"  # spelled apart so that this file does not cite it
    citing = [
        str(path.relative_to(ROOT))
        for path in _cited_files()
        if outside in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert citing == []
