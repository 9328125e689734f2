"""A file the gateway fetched from a caller's URL keeps that (vetted) URL: adapters send the bytes
inline where they can, and the URL where an upstream reads inputs from URLs only or the file is
over its inline limit."""

from __future__ import annotations

import base64
import dataclasses
from types import SimpleNamespace

import pytest

from reapi import File, InvalidRequestError, Payload
from reapi.providers._host_inputs import _video
from reapi.providers._reference import image_url
from reapi.providers._source_video import SourceVideo, source_video
from reapi.providers.dashscope import _frame_url
from reapi.testing import png_bytes, sample_mp4

SOURCE = "https://media.example.com/a.png?X-Amz-Signature=abc"
PNG = png_bytes(8, 8)


def test_an_image_goes_inline_unless_it_is_over_the_inline_limit():
    fetched = File(PNG, "image.png", "image/png", source_url=SOURCE)
    assert image_url(fetched, param="image").startswith("data:image/png;base64,")
    assert image_url(fetched, param="image", max_bytes=len(PNG) - 1) == SOURCE
    uploaded = File(PNG, "image.png", "image/png")
    with pytest.raises(InvalidRequestError) as info:
        image_url(uploaded, param="image", max_bytes=len(PNG) - 1)
    assert info.value.code == "file_too_large"


def test_dashscope_gets_the_vetted_url_of_a_fetched_first_frame():
    assert _frame_url(File(PNG, "i.png", "image/png", source_url=SOURCE)) == SOURCE
    with pytest.raises(InvalidRequestError):
        _frame_url(File(PNG, "i.png", "image/png"))


def test_a_second_host_gets_the_vetted_video_never_the_url_it_was_fetched_from():
    """A host fetching the caller's URL again could get other bytes than reapi vetted: it gets
    the vetted bytes inline, or its own copy of them (uploaded by its adapter)."""
    fetched = File(sample_mp4(), "v.mp4", "video/mp4", source_url="https://media.example.com/v")
    source = _vetted(fetched)

    def call(source: SourceVideo) -> SimpleNamespace:
        return SimpleNamespace(payload=Payload(input_reference=fetched), source=source)

    inline = _video(call(source))  # type: ignore[arg-type]
    assert inline == "data:video/mp4;base64," + base64.b64encode(sample_mp4()).decode()
    copy = dataclasses.replace(source, host_url="https://api.replicate.com/v1/files/abc")
    assert _video(call(copy)) == "https://api.replicate.com/v1/files/abc"  # type: ignore[arg-type]
    assert "media.example.com" not in repr(source)


def _vetted(reference: File) -> SourceVideo:
    protocol = source_video(Payload(input_reference=reference), 16)
    with pytest.raises(StopIteration) as done:
        next(protocol)
    vetted: SourceVideo = done.value.value
    return vetted


def test_the_source_url_never_shows_in_a_files_repr():
    fetched = File(PNG, "image.png", "image/png", source_url=SOURCE)
    assert "example" not in repr(fetched) and "example" not in str(fetched)
