"""Why a promotion code was refused: each says so plainly, and none repeats what was typed."""

from __future__ import annotations

from ..errors import GatewayError

__all__ = [
    "CodeExists",
    "PromoRefused",
]


class PromoRefused(GatewayError):
    """A redemption refused (the code field's message on the billing page)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message, code=code, param="code")

    @classmethod
    def unknown(cls) -> PromoRefused:
        return cls(
            "This promotion code does not exist. Check how it is spelled.", code="promo_unknown"
        )

    @classmethod
    def expired(cls, when: str) -> PromoRefused:
        return cls(f"This promotion code expired on {when}.", code="promo_expired")

    @classmethod
    def withdrawn(cls) -> PromoRefused:
        return cls("This promotion code has been withdrawn.", code="promo_disabled")

    @classmethod
    def used_up(cls) -> PromoRefused:
        return cls(
            "This promotion code has been used as many times as it may be.", code="promo_used_up"
        )

    @classmethod
    def already(cls) -> PromoRefused:
        return cls(
            "This account has redeemed this promotion code already: each account may use it once.",
            code="promo_already_redeemed",
        )


class CodeExists(GatewayError):
    http_status = 409
    default_code = "promo_code_exists"

    def __init__(self) -> None:
        super().__init__("a promotion code with this text exists already", param="code")
