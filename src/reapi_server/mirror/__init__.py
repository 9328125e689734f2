"""Where generated outputs live once the gateway has them: its own storage, at stable URLs."""

from .factory import build_store
from .local import LocalDiskStore
from .storage import ObjectStore, OpenedObject, StoredObject, read_object

__all__ = [
    "LocalDiskStore",
    "ObjectStore",
    "OpenedObject",
    "StoredObject",
    "build_store",
    "read_object",
]
