"""ORM models. No table has a column for a prompt, an image or any other request body."""

from .accounts import Account
from .alerts import BalanceAlert, KeySpendAlert
from .api_keys import ApiKey
from .audit import AuditEntry
from .base import Base
from .commit_markers import CommitMarker
from .credits import MAX_CREDITS, CreditHold, LedgerEntry
from .deletions import PendingDeletion
from .email import Notice, NoticeDelivery, OutboxMessage
from .fleet import FleetSecret
from .idempotency import IdempotencyRecord
from .jobs import ACTIVE_JOB_STATES, VideoJob
from .outputs import StoredOutput
from .promo import PromoCode, PromoRedemption
from .usage import UsageRecord
from .users import AuthThrottle, Consent, Membership, User, UserToken, WebSession

__all__ = [
    "ACTIVE_JOB_STATES",
    "MAX_CREDITS",
    "Account",
    "ApiKey",
    "AuditEntry",
    "AuthThrottle",
    "BalanceAlert",
    "Base",
    "CommitMarker",
    "Consent",
    "CreditHold",
    "FleetSecret",
    "IdempotencyRecord",
    "KeySpendAlert",
    "LedgerEntry",
    "Membership",
    "Notice",
    "NoticeDelivery",
    "OutboxMessage",
    "PendingDeletion",
    "PromoCode",
    "PromoRedemption",
    "StoredOutput",
    "UsageRecord",
    "User",
    "UserToken",
    "VideoJob",
    "WebSession",
]
