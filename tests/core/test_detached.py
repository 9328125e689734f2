"""Errors carry no chained context (`reapi._detached`): an error raised in place of another keeps
nothing of it, and no module raises another exception inside an `except` block (where Python
would chain the caught one as `__context__`, `from None` or not)."""

import ast
import asyncio
import json
from pathlib import Path

import pytest

from reapi._detached import detached, translated, translated_async

SRC = Path(__file__).resolve().parents[2] / "src"
#: Test doubles of the providers and of Stripe, OAuth and mail services, not the product: they
#: never see a gateway's requests.
SKIPPED = (SRC / "reapi" / "testing", SRC / "reapi_server" / "testing")
SECRET = "MARKER-secret-4f1c"


def _raises_inside_except(path: Path) -> list[int]:
    """Lines of `raise X` inside an `except` block of the same function (a bare `raise`, or
    raising the caught exception itself, chains nothing new)."""
    found: list[int] = []

    class Visitor(ast.NodeVisitor):
        def __init__(self) -> None:
            self.handlers: list[str | None] = []

        def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
            self.handlers.append(node.name)
            for child in node.body:
                self.visit(child)
            self.handlers.pop()

        def visit_FunctionDef(self, node: ast.AST) -> None:
            saved, self.handlers = self.handlers, []
            self.generic_visit(node)
            self.handlers = saved

        visit_AsyncFunctionDef = visit_FunctionDef
        visit_Lambda = visit_FunctionDef

        def visit_Raise(self, node: ast.Raise) -> None:
            if not self.handlers or node.exc is None:
                return
            if isinstance(node.exc, ast.Name) and node.exc.id in self.handlers:
                return
            found.append(node.lineno)

    Visitor().visit(ast.parse(path.read_text(), str(path)))
    return found


def test_no_module_raises_another_exception_inside_an_except_block():
    offenders = [
        f"{path.relative_to(SRC)}:{line}"
        for path in sorted(SRC.rglob("*.py"))
        if not any(path.is_relative_to(skipped) for skipped in SKIPPED)
        for line in _raises_inside_except(path)
    ]
    assert offenders == [], "use reapi._detached.translated (or raise after the except block)"


def test_the_scan_finds_what_it_looks_for(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(
        "def f():\n"
        "    try:\n"
        "        g()\n"
        "    except ValueError as exc:\n"
        "        raise exc\n"  # the same exception: fine
        "    except KeyError:\n"
        "        raise\n"  # a bare re-raise: fine
        "    except TypeError:\n"
        "        raise RuntimeError('x') from None\n"  # line 9: chains the TypeError
        "    except OSError:\n"
        "        def later():\n"
        "            raise RuntimeError('y')\n"  # another function: not inside the handler
    )
    assert _raises_inside_except(path) == [9]


def _parse(text: str) -> object:
    return json.loads(text)


def _refusal(_: BaseException) -> ValueError:
    return ValueError("the body is not valid JSON")


def test_a_translated_error_has_no_chain():
    with pytest.raises(ValueError) as info:
        translated(lambda: _parse(SECRET), json.JSONDecodeError, _refusal)
    error = info.value
    assert error.__context__ is None and error.__cause__ is None
    assert str(error) == "the body is not valid JSON"
    assert translated(lambda: _parse("[1]"), json.JSONDecodeError, _refusal) == [1]


def test_other_errors_pass_untouched():
    def fail() -> None:
        raise KeyError(SECRET)

    with pytest.raises(KeyError):
        translated(fail, json.JSONDecodeError, _refusal)


def test_the_async_twin():
    async def parse() -> object:
        await asyncio.sleep(0)
        return _parse(SECRET)

    with pytest.raises(ValueError) as info:
        asyncio.run(translated_async(parse, json.JSONDecodeError, _refusal))
    assert info.value.__context__ is None and info.value.__cause__ is None


def test_detached_cuts_an_existing_chain():
    try:
        try:
            raise KeyError(SECRET)
        except KeyError:
            raise ValueError("v") from None  # the chain this test cuts
    except ValueError as error:
        assert error.__context__ is not None
        assert detached(error).__context__ is None and error.__cause__ is None
