"""ORM models. No table has a column for a prompt, an image or any other request body."""

from .accounts import Account
from .api_keys import ApiKey
from .base import Base
from .commit_markers import CommitMarker
from .credits import MAX_CREDITS, CreditHold, LedgerEntry
from .deletions import PendingDeletion
from .idempotency import IdempotencyRecord
from .jobs import ACTIVE_JOB_STATES, VideoJob
from .outputs import StoredOutput
from .usage import UsageRecord
from .webhooks import DELIVERY_STATES, WebhookDelivery

__all__ = [
    "ACTIVE_JOB_STATES",
    "DELIVERY_STATES",
    "MAX_CREDITS",
    "Account",
    "ApiKey",
    "Base",
    "CommitMarker",
    "CreditHold",
    "IdempotencyRecord",
    "LedgerEntry",
    "PendingDeletion",
    "StoredOutput",
    "UsageRecord",
    "VideoJob",
    "WebhookDelivery",
]
