"""ORM models. No table has a column for a prompt, an image or any other request body."""

from .accounts import Account
from .alerts import BalanceAlert, KeySpendAlert
from .api_keys import ApiKey
from .audit import AuditEntry
from .base import Base
from .billing import (
    BillingProfile,
    DeletedTopUp,
    Dispute,
    Payment,
    Refund,
    StripeEvent,
    TopUp,
)
from .commit_markers import CommitMarker
from .credits import MAX_CREDITS, CreditHold, LedgerEntry
from .deletions import PendingDeletion
from .email import Notice, NoticeDelivery, OutboxMessage
from .fleet import FleetSecret
from .idempotency import IdempotencyRecord
from .jobs import ACTIVE_JOB_STATES, VideoJob
from .oauth import OAuthIdentity, OAuthRequest
from .outputs import StoredOutput
from .promo import PromoCode, PromoRedemption
from .schema import SchemaCompatibility
from .usage import ROLLUP_SLOT_SECONDS, UsageRecord, UsageRollup
from .users import (
    AuthThrottle,
    BackupCode,
    Consent,
    KnownDevice,
    Membership,
    User,
    UserToken,
    WebSession,
)
from .webhooks import DELIVERY_STATES, WebhookDelivery

__all__ = [
    "ACTIVE_JOB_STATES",
    "DELIVERY_STATES",
    "MAX_CREDITS",
    "ROLLUP_SLOT_SECONDS",
    "Account",
    "ApiKey",
    "AuditEntry",
    "AuthThrottle",
    "BackupCode",
    "BalanceAlert",
    "Base",
    "BillingProfile",
    "CommitMarker",
    "Consent",
    "CreditHold",
    "DeletedTopUp",
    "Dispute",
    "FleetSecret",
    "IdempotencyRecord",
    "KeySpendAlert",
    "KnownDevice",
    "LedgerEntry",
    "Membership",
    "Notice",
    "NoticeDelivery",
    "OAuthIdentity",
    "OAuthRequest",
    "OutboxMessage",
    "Payment",
    "PendingDeletion",
    "PromoCode",
    "PromoRedemption",
    "Refund",
    "SchemaCompatibility",
    "StoredOutput",
    "StripeEvent",
    "TopUp",
    "UsageRecord",
    "UsageRollup",
    "User",
    "UserToken",
    "VideoJob",
    "WebSession",
    "WebhookDelivery",
]
