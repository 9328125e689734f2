"""ORM models. No table has a column for a prompt, an image or any other request body."""

from .accounts import Account
from .api_keys import ApiKey
from .base import Base
from .billing import Payment
from .credits import CreditHold, LedgerEntry
from .deletions import PendingDeletion
from .email import OutboxMessage
from .idempotency import IdempotencyRecord
from .jobs import ACTIVE_JOB_STATES, VideoJob
from .outputs import StoredOutput
from .usage import UsageRecord
from .users import AuthThrottle, Consent, Membership, User, UserToken, WebSession

__all__ = [
    "ACTIVE_JOB_STATES",
    "Account",
    "ApiKey",
    "AuthThrottle",
    "Base",
    "Consent",
    "CreditHold",
    "IdempotencyRecord",
    "LedgerEntry",
    "Membership",
    "OutboxMessage",
    "Payment",
    "PendingDeletion",
    "StoredOutput",
    "UsageRecord",
    "User",
    "UserToken",
    "VideoJob",
    "WebSession",
]
