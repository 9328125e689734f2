"""The store the settings name: local disk by default, or an S3-compatible bucket."""

from __future__ import annotations

from ..config import Settings
from ..extras import require
from .local import LocalDiskStore
from .storage import ObjectStore

__all__ = ["build_store"]


def build_store(settings: Settings) -> ObjectStore:
    if settings.storage_backend == "s3":
        require('storage_backend = "s3"', "s3", "boto3")
        from .s3 import S3Store  # boto3 is imported only by those who use it

        return S3Store.from_settings(settings)
    return LocalDiskStore(settings.outputs_dir)
