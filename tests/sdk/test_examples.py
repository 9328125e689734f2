"""Every script in examples/ and every Python snippet of docs/testing.md runs as it is (against
the simulators), and prints nothing on stderr: no traceback from a server stopping under a
client's open connection."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
#: Every warning shown (unclosed sockets are ResourceWarnings, hidden by default); asyncio's own
#: complaints (a task destroyed while pending, an unretrieved exception) are logged regardless.
#: Not `-X dev`: its asyncio debug mode also reports any callback slower than 0.1 s, which only
#: says how loaded the machine was.
STRICT = ("-W", "default")
SNIPPETS = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "testing.md").read_text(), re.S)


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script):
    done = subprocess.run(
        [sys.executable, *STRICT, str(script)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert done.stderr == ""


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda s: s.splitlines()[0])
def test_testing_page_snippets_run(snippet):
    done = subprocess.run(
        [sys.executable, *STRICT, "-c", snippet],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
