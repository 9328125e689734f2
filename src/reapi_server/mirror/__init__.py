"""Where generated outputs live once the gateway has them: its own storage, at stable URLs."""

from .storage import LocalDiskStore, ObjectStore, StoredObject

__all__ = ["LocalDiskStore", "ObjectStore", "StoredObject"]
