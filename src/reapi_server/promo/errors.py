"""Why a promotion code was refused. None repeats what was typed, and one message stands for
every reason that would tell something about a code the person has not redeemed (it does not
exist, it expired, it was withdrawn, its uses are taken): telling them apart would let anyone
find which codes exist by trying. Only "this account redeemed it already" is said plainly: it
is about the account's own redemption."""

from __future__ import annotations

from ..errors import GatewayError

__all__ = [
    "CodeExists",
    "PromoRefused",
]


class PromoRefused(GatewayError):
    """A redemption refused (the code field's message on the billing page). `reason` says
    which rule refused it, for the server's own use (tests, the operator's CLI): it is never
    in what the person sees, whose `code` and message are the same for every hidden reason."""

    def __init__(self, message: str, *, code: str, reason: str) -> None:
        super().__init__(message, code=code, param="code")
        self.reason = reason

    @classmethod
    def not_redeemable(cls, reason: str) -> PromoRefused:
        """`reason`: unknown | expired | withdrawn | used_up."""
        return cls(
            "This promotion code can't be redeemed. Check how it is spelled.",
            code="promo_not_redeemable",
            reason=reason,
        )

    @classmethod
    def already(cls) -> PromoRefused:
        return cls(
            "This account has redeemed this promotion code already: each account may use it once.",
            code="promo_already_redeemed",
            reason="already",
        )


class CodeExists(GatewayError):
    http_status = 409
    default_code = "promo_code_exists"

    def __init__(self) -> None:
        super().__init__("a promotion code with this text exists already", param="code")
