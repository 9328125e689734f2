"""Media types reapi reads from a file's first bytes, never from a name or a header."""

from __future__ import annotations

__all__ = [
    "IMAGE_TYPES",
    "MEDIA_TYPES",
    "SNIFFED_TYPES",
    "VIDEO_TYPES",
    "extension_for",
    "sniff_media_type",
]

#: Input images: what every image model in the catalog takes.
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
#: Input videos (enhancement, second hosts).
VIDEO_TYPES = frozenset({"video/mp4", "video/quicktime", "video/webm"})
#: An `input_reference`: a first frame for most video models, a video for enhancement.
MEDIA_TYPES = IMAGE_TYPES | VIDEO_TYPES
#: Every type `sniff_media_type` can answer: the only ones the gateway serves outputs as.
SNIFFED_TYPES = MEDIA_TYPES | {"image/gif"}

_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
}


def sniff_media_type(data: bytes) -> str | None:
    """The media type a file's first bytes (16 are enough) announce, among those reapi knows."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[4:8] == b"ftyp":
        return "video/quicktime" if data[8:12] == b"qt  " else "video/mp4"
    if data[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "video/quicktime"  # QuickTime files older than the ftyp box
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    return None


def extension_for(content_type: str) -> str:
    """A file name extension for a media type (parameters ignored); `bin` when unknown."""
    return _EXTENSIONS.get(content_type.split(";", 1)[0].strip().lower(), "bin")
