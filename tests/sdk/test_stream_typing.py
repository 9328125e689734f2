"""`images.generate`/`edit` are typed by `stream`: a literal picks the answer's type, and a
`bool` known only at run time is taken too (the union), as openai-python takes it. Checked with
mypy on a snippet (the only way to see what a type checker sees)."""

from __future__ import annotations

from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

SNIPPET = """
from collections.abc import AsyncIterator, Iterator
from reapi import AsyncReAPI, ReAPI
from reapi.types import ImagesResponse, ImageStreamEvent


def sync(client: ReAPI, flag: bool) -> None:
    one: ImagesResponse = client.images.generate(model="m", prompt="p")
    events: Iterator[ImageStreamEvent] = client.images.generate(model="m", prompt="p", stream=True)
    either: ImagesResponse | Iterator[ImageStreamEvent] = client.images.generate(
        model="m", prompt="p", stream=flag
    )
    edited: ImagesResponse | Iterator[ImageStreamEvent] = client.images.edit(
        model="m", prompt="p", image=b"", stream=flag
    )


async def asynchronous(client: AsyncReAPI, flag: bool) -> None:
    one: ImagesResponse = await client.images.edit(model="m", prompt="p", image=b"", stream=False)
    either: ImagesResponse | AsyncIterator[ImageStreamEvent] = await client.images.generate(
        model="m", prompt="p", stream=flag
    )
    edited: ImagesResponse | AsyncIterator[ImageStreamEvent] = await client.images.edit(
        model="m", prompt="p", image=b"", stream=flag
    )
"""


def test_stream_given_as_a_bool_type_checks(tmp_path: Path) -> None:
    snippet = tmp_path / "snippet.py"
    snippet.write_text(SNIPPET)
    cache = tmp_path / "mypy_cache"
    out, err, status = mypy_api.run(["--strict", "--cache-dir", str(cache), str(snippet)])
    assert status == 0, out + err
