"""The keys identity uses, each derived from the installation secret for one purpose only."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..derived_keys import derive_key

__all__ = ["IdentityKeys"]


@dataclass(frozen=True, slots=True)
class IdentityKeys:
    #: AES-256-GCM key sealing TOTP secrets at rest.
    totp: bytes = field(repr=False)
    #: HMAC key of the backup codes' hashes.
    backup_codes: bytes = field(repr=False)
    #: HMAC key of the known devices' hashes.
    devices: bytes = field(repr=False)

    @classmethod
    def derive(cls, root: bytes) -> IdentityKeys:
        return cls(
            totp=derive_key(root, "totp"),
            backup_codes=derive_key(root, "backup-codes"),
            devices=derive_key(root, "devices"),
        )
