"""The export's sections: one per table about a person, in the order a person reads them.

The registry is `SECTIONS`. A domain that adds a table about people adds its section here
(for example `Section("sign_in_methods", ("oauth_identities",), _sign_in_methods)`); the
export test fails for any table that is neither exported nor listed as not personal.
Secrets are never exported: no password hash, session id, token, API key or key hash, TOTP
secret, backup code (nor its hash), PKCE verifier or nonce."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ...alerts.export import key_alerts_about, thresholds_about
from ...api_keys import repository as keys
from ...api_keys.limits import parse_allowlist
from ...audit.export import rows_about as audit_rows_about
from ...billing import repository as payments
from ...credits import repository as credits
from ...email.notices import deliveries_of
from ...email.outbox import list_for_person
from ...idempotency import repository as idempotency
from ...identity import repository as users
from ...jobs import repository as jobs
from ...mirror import repository as outputs
from ...mirror.outputs import file_url
from ...models import TopUp
from ...oauth import repository as oauth
from ...promo.export import rows_about as redemptions_about
from ...usage import repository as usage
from ...webhooks import repository as webhooks
from .. import repository as accounts
from .section import Row, Section, Subject, iso

__all__ = ["SECTIONS"]


async def _profile(session: AsyncSession, subject: Subject) -> list[Row]:
    user = await users.get_user(session, subject.user_id)
    if user is None:
        return []
    return [
        {
            "user_id": user.id,
            "email": user.email,
            "email_verified_at": iso(user.email_verified_at),
            "has_password": user.password_hash is not None,
            "role": user.role,
            "created_at": iso(user.created_at),
            "disabled_at": iso(user.disabled_at),
            "time_zone": user.time_zone,
        }
    ]


async def _notification_settings(session: AsyncSession, subject: Subject) -> list[Row]:
    user = await users.get_user(session, subject.user_id)
    if user is None:
        return []
    return [{"newsletter": user.newsletter, "new_device_alerts": user.new_device_alerts}]


async def _two_factor(session: AsyncSession, subject: Subject) -> list[Row]:
    """Whether it is on, since when, how many backup codes are left: never the secret."""
    user = await users.get_user(session, subject.user_id)
    if user is None:
        return []
    return [
        {
            "enabled": user.totp_enabled_at is not None,
            "enabled_at": iso(user.totp_enabled_at),
            "backup_codes_left": await users.count_backup_codes_left(session, user.id),
        }
    ]


async def _backup_codes(session: AsyncSession, subject: Subject) -> list[Row]:
    """When each was made and used: never the code or its hash."""
    return [
        {"created_at": iso(c.created_at), "used_at": iso(c.used_at)}
        for c in await users.list_backup_codes(session, subject.user_id)
    ]


async def _known_devices(session: AsyncSession, subject: Subject) -> list[Row]:
    """The keyed hash each browser is known by (its user agent and network are not kept)."""
    return [
        {
            "device_hash": d.device_hash,
            "first_seen_at": iso(d.first_seen_at),
            "last_seen_at": iso(d.last_seen_at),
        }
        for d in await users.list_known_devices(session, subject.user_id)
    ]


async def _sign_in_methods(session: AsyncSession, subject: Subject) -> list[Row]:
    return [
        {
            "provider": i.provider,
            "provider_user_id": i.subject,
            "email_at_link_time": i.email,
            "linked_at": iso(i.created_at),
        }
        for i in await oauth.list_identities(session, subject.user_id)
    ]


async def _provider_sign_ins(session: AsyncSession, subject: Subject) -> list[Row]:
    """Links and sign-ins again started and not finished (deleted once expired)."""
    return [
        {
            "provider": r.provider,
            "purpose": r.purpose,
            "created_at": iso(r.created_at),
            "expires_at": iso(r.expires_at),
        }
        for r in await oauth.requests_of_user(session, subject.user_id)
    ]


async def _notices(session: AsyncSession, subject: Subject) -> list[Row]:
    return [
        {
            "kind": notice.kind,
            "subject": notice.subject,
            "effective_on": notice.effective_on,
            "queued_at": iso(delivery.created_at),
        }
        for delivery, notice in await deliveries_of(session, subject.user_id)
    ]


async def _consents(session: AsyncSession, subject: Subject) -> list[Row]:
    return [
        {"kind": c.kind, "policy_version": c.policy_version, "accepted_at": iso(c.accepted_at)}
        for c in await users.list_consents(session, subject.user_id)
    ]


async def _sessions(session: AsyncSession, subject: Subject) -> list[Row]:
    return [
        {
            "id": s.id,
            "client_address": s.client_address,
            "browser": s.browser,
            "created_at": iso(s.created_at),
            "last_seen_at": iso(s.last_seen_at),
            "expires_at": iso(s.expires_at),
            "confirmed_at": iso(s.confirmed_at),
        }
        for s in await users.list_sessions(session, subject.user_id)
    ]


async def _email_links(session: AsyncSession, subject: Subject) -> list[Row]:
    return [
        {
            "purpose": t.purpose,
            "sent_to": t.email,
            "created_at": iso(t.created_at),
            "expires_at": iso(t.expires_at),
            "used_at": iso(t.used_at),
        }
        for t in await users.list_tokens(session, subject.user_id)
    ]


async def _sign_in_throttle(session: AsyncSession, subject: Subject) -> list[Row]:
    rows = await users.throttle_rows(session, subject.throttle_keys)
    return [
        {
            "rule": row.key.partition(":")[0],
            "failures": row.failures,
            "window_started_at": iso(row.window_started_at),
        }
        for row in sorted(rows.values(), key=lambda r: r.window_started_at)
    ]


async def _mail(session: AsyncSession, subject: Subject) -> list[Row]:
    return [
        {
            "id": m.id,
            "to": m.to_address,
            "message": m.template,
            "status": m.status,
            "created_at": iso(m.created_at),
            "sent_at": iso(m.sent_at),
        }
        for m in await list_for_person(session, subject.user_id, subject.email)
    ]


async def _memberships(session: AsyncSession, subject: Subject) -> list[Row]:
    return [
        {"account_id": m.account_id, "role": m.role, "created_at": iso(m.created_at)}
        for m in await accounts.memberships_of(session, subject.user_id)
    ]


async def _accounts(session: AsyncSession, subject: Subject) -> list[Row]:
    found = []
    for account_id in subject.account_ids:
        account = await accounts.get(session, account_id)
        if account is not None:
            balance, reserved = await credits.balance_of(session, account_id)
            found.append(
                {
                    "id": account.id,
                    "balance": balance,
                    "reserved": reserved,
                    "debt": account.debt,
                    "on_hold": account.on_hold,
                    "created_at": iso(account.created_at),
                    "disabled_at": iso(account.disabled_at),
                }
            )
    return found


async def _api_keys(session: AsyncSession, subject: Subject) -> list[Row]:
    found = []
    for account_id in subject.account_ids:
        last_used = await usage.last_used_by_key(session, account_id)
        found += [
            {
                "id": k.id,
                "account_id": k.account_id,
                "kind": k.kind,
                "name": k.name,
                "last4": k.last4,
                "created_at": iso(k.created_at),
                "last_used_at": iso(_latest(last_used.get(k.id), k.last_used_at)),
                "revoked_at": iso(k.revoked_at),
                "expires_at": iso(k.expires_at),
                "spend_limit": k.spend_limit,
                "spend_period": k.spend_period,
                "spent_in_period": k.period_spend,
                "period_start": iso(k.period_start or None),
                "models": _models(k.model_allowlist),
                "requests_per_minute": k.requests_per_minute,
                "max_concurrent_videos": k.max_concurrent_videos,
                "webhook_url": k.webhook_url,
                "webhook_disabled_at": iso(k.webhook_disabled_at),
            }
            for k in await keys.list_for_account(session, account_id)
        ]
    return found


def _latest(*times: float | None) -> float | None:
    """The later of the usage rows' and the key's own record (written about once a minute)."""
    known = [t for t in times if t is not None]
    return max(known) if known else None


def _models(allowlist: str | None) -> list[str] | None:
    """The models the key may call (None: every model)."""
    models = parse_allowlist(allowlist)
    return sorted(models) if models is not None else None


async def _operator_actions(session: AsyncSession, subject: Subject) -> list[Row]:
    """What operators did to the person or their accounts (credit adjustments, disabling,
    ...): when, what, through which channel; not which admin (that is theirs)."""
    return await audit_rows_about(session, subject.user_id, subject.account_ids)


async def _promotion_codes(session: AsyncSession, subject: Subject) -> list[Row]:
    """The codes redeemed for the person's accounts: which, when, for how many credits."""
    return await redemptions_about(session, subject.user_id, subject.account_ids)


async def _balance_alerts(session: AsyncSession, subject: Subject) -> list[Row]:
    return await thresholds_about(session, subject.user_id, subject.account_ids)


async def _key_spend_alerts(session: AsyncSession, subject: Subject) -> list[Row]:
    return await key_alerts_about(session, subject.user_id, subject.account_ids)


async def _usage(session: AsyncSession, subject: Subject) -> list[Row]:
    found = []
    for account_id in subject.account_ids:
        found += [
            {
                "id": u.id,
                "created_at": iso(u.created_at),
                "api_key_id": u.api_key_id,
                "model": u.model,
                "endpoint": u.endpoint,
                "status": u.status,
                "credit_cost": u.credit_cost,
                "error_code": u.error_code,
                "provider": u.provider,
                "attempts": u.attempts,
                "duration_ms": u.duration_ms,
            }
            for u in await usage.all_for_account(session, account_id)
        ]
    return found


async def _credit_ledger(session: AsyncSession, subject: Subject) -> list[Row]:
    found = []
    for account_id in subject.account_ids:
        found += [
            {
                "id": e.id,
                "account_id": e.account_id,
                "created_at": iso(e.created_at),
                "kind": e.kind,
                "amount": e.amount,
                "reserved_delta": e.reserved_delta,
                "debt_delta": e.debt_delta,
                "hold_id": e.hold_id,
                "source_id": e.source_id,
            }
            for e in await credits.ledger_for_account(session, account_id)
        ]
    return found


async def _credit_holds(session: AsyncSession, subject: Subject) -> list[Row]:
    found = []
    for account_id in subject.account_ids:
        found += [
            {
                "id": h.id,
                "purpose": h.purpose,
                "request_id": h.request_id,
                "api_key_id": h.api_key_id,
                "amount": h.amount,
                "charged": h.charged,
                "status": h.status,
                "created_at": iso(h.created_at),
                "closed_at": iso(h.closed_at),
            }
            for h in await credits.holds_for_account(session, account_id)
        ]
    return found


async def _payments(session: AsyncSession, subject: Subject) -> list[Row]:
    found = []
    for account_id in subject.account_ids:
        found += [
            {
                "id": p.id,
                "created_at": iso(p.created_at),
                "product": p.product,
                "credits": p.credits,
                "amount": p.amount,
                "amount_subtotal": p.amount_subtotal,
                "currency": p.currency,
                "status": p.status,
                "invoice_id": p.invoice_id,
                "invoice_number": p.invoice_number,
                "invoice_url": p.invoice_url,
                "stripe_customer_id": p.stripe_customer_id,
                "stripe_checkout_session_id": p.stripe_checkout_session_id,
                "stripe_payment_intent_id": p.stripe_payment_intent_id,
                "stripe_charge_id": p.stripe_charge_id,
                "source": p.source,
                "paid_at": iso(p.paid_at),
                "amount_refunded": p.amount_refunded,
                "invoice_pdf_url": p.invoice_pdf_url,
                "receipt_url": p.receipt_url,
            }
            for p in await payments.list_for_account(session, account_id)
        ]
    return found


async def _top_ups(session: AsyncSession, subject: Subject) -> list[Row]:
    found: list[Row] = []
    for account_id in subject.account_ids:
        rows = await session.execute(
            select(TopUp).where(TopUp.account_id == account_id).order_by(TopUp.created_at)
        )
        found += [
            {
                "id": t.id,
                "kind": t.kind,
                "pack_id": t.pack_id,
                "product": t.product,
                "credits": t.credits,
                "amount": t.amount,
                "currency": t.currency,
                "status": t.status,
                "save_card": t.save_card,
                "stripe_checkout_session_id": t.stripe_checkout_session_id,
                "stripe_payment_intent_id": t.stripe_payment_intent_id,
                "failure_code": t.failure_code,
                "created_at": iso(t.created_at),
                "closed_at": iso(t.closed_at),
            }
            for t in rows.scalars()
        ]
    return found


async def _refunds(session: AsyncSession, subject: Subject) -> list[Row]:
    found: list[Row] = []
    for account_id in subject.account_ids:
        found += [
            {
                "id": r.id,
                "payment_id": r.payment_id,
                "amount": r.amount,
                "credits": r.credits,
                "credits_taken": r.credits_taken,
                "credits_debt": r.credits_debt,
                "credits_waived": r.credits_waived,
                "requested_by": r.requested_by,
                "created_at": iso(r.created_at),
            }
            for r in await payments.refunds_for_account(session, account_id)
        ]
    return found


async def _disputes(session: AsyncSession, subject: Subject) -> list[Row]:
    found: list[Row] = []
    for account_id in subject.account_ids:
        found += [
            {
                "id": d.id,
                "payment_id": d.payment_id,
                "amount": d.amount,
                "reason": d.reason,
                "credits": d.credits,
                "credits_taken": d.credits_taken,
                "credits_debt": d.credits_debt,
                "status": d.status,
                "created_at": iso(d.created_at),
                "closed_at": iso(d.closed_at),
            }
            for d in await payments.disputes_for_account(session, account_id)
        ]
    return found


async def _billing_profile(session: AsyncSession, subject: Subject) -> list[Row]:
    found: list[Row] = []
    for account_id in subject.account_ids:
        profile = await payments.profile(session, account_id)
        if profile is None:
            continue
        found.append(
            {
                "account_id": account_id,
                "stripe_customer_id": profile.stripe_customer_id,
                "saved_card": profile.card_label,
                "auto_top_up": profile.auto_enabled,
                "auto_top_up_threshold": profile.auto_threshold,
                "auto_top_up_pack": profile.auto_pack_id,
                "auto_top_up_monthly_cap": profile.auto_monthly_cap,
                "auto_top_up_paused_reason": profile.auto_paused_reason,
                "auto_top_up_paused_at": iso(profile.auto_paused_at),
                "updated_at": iso(profile.updated_at),
            }
        )
    return found


async def _video_jobs(session: AsyncSession, subject: Subject) -> list[Row]:
    found = []
    for account_id in subject.account_ids:
        found += [
            {
                "id": j.id,
                "created_at": iso(j.created_at),
                "completed_at": iso(j.completed_at),
                "api_key_id": j.api_key_id,
                "model": j.model,
                "status": j.status,
                "seconds": j.seconds,
                "size": j.size,
                "cost": j.cost,
                "provider": j.provider,
                "error_code": j.error_code,
                "webhook_url": j.webhook_url,
            }
            for j in await jobs.all_for_account(session, account_id)
        ]
    return found


async def _webhook_deliveries(session: AsyncSession, subject: Subject) -> list[Row]:
    found = []
    for account_id in subject.account_ids:
        found += [
            {
                "id": d.id,
                "created_at": iso(d.created_at),
                "video_id": d.video_id,
                "api_key_id": d.api_key_id,
                "url": d.url,
                "status": d.status,
                "attempts": d.attempts,
                "last_status": d.last_status,
                "last_error": d.last_error,
                "finished_at": iso(d.finished_at),
                # What the privacy policy says is kept: the video's state as it was sent
                # (the job itself may be deleted since).
                "video_as_sent": _stored_json(d.video_object),
            }
            for d in await webhooks.all_for_account(session, account_id)
        ]
    return found


async def _outputs(session: AsyncSession, subject: Subject) -> list[Row]:
    found = []
    for account_id in subject.account_ids:
        found += [
            {
                "id": o.id,
                "kind": o.kind,
                "content_type": o.content_type,
                "size_bytes": o.size_bytes,
                "task_id": o.task_id,
                "url": file_url(subject.base_url, o.id),
                "created_at": iso(o.created_at),
                "expires_at": iso(o.created_at + subject.output_retention_seconds),
            }
            for o in await outputs.outputs_for_account(session, account_id)
        ]
    return found


def _stored_json(text: str | None) -> Any:
    """A JSON document the gateway stored (what it sent or answered), as the export's JSON."""
    return json.loads(text) if text is not None else None


async def _idempotency(session: AsyncSession, subject: Subject) -> list[Row]:
    """When, and the answer kept for replays (ids and links, never image bytes or a prompt):
    the key and the request are stored only as keyed hashes."""
    found = []
    for account_id in subject.account_ids:
        found += [
            {
                "state": r.state,
                "status_code": r.status_code,
                "created_at": iso(r.created_at),
                "expires_at": iso(r.expires_at),
                "answer": _stored_json(r.response),
            }
            for r in await idempotency.list_for_account(session, account_id)
        ]
    return found


SECTIONS: tuple[Section, ...] = (
    Section("profile", ("users",), _profile),
    Section("notification_settings", ("users",), _notification_settings),
    Section("two_factor", ("users",), _two_factor),
    Section("backup_codes", ("backup_codes",), _backup_codes),
    Section("known_devices", ("known_devices",), _known_devices),
    Section("sign_in_methods", ("oauth_identities",), _sign_in_methods),
    Section("provider_sign_ins", ("oauth_requests",), _provider_sign_ins),
    Section("consents", ("consents",), _consents),
    Section("sessions", ("web_sessions",), _sessions),
    Section("email_links", ("user_tokens",), _email_links),
    Section("sign_in_throttle", ("auth_throttle",), _sign_in_throttle),
    Section("mail", ("outbox_messages",), _mail),
    Section("notices", ("notice_deliveries",), _notices),
    Section("memberships", ("memberships",), _memberships),
    Section("accounts", ("accounts",), _accounts),
    Section("api_keys", ("api_keys",), _api_keys),
    # usage_rollups hold only sums of these rows (per 15 minutes, key, model and status): the
    # rows are the whole of it.
    Section("usage", ("usage_records", "usage_rollups"), _usage),
    Section("credit_ledger", ("credit_ledger",), _credit_ledger),
    Section("credit_holds", ("credit_holds",), _credit_holds),
    Section("payments", ("payments",), _payments),
    Section("refunds", ("refunds",), _refunds),
    Section("disputes", ("disputes",), _disputes),
    Section("top_ups", ("top_ups",), _top_ups),
    Section("billing_profile", ("billing_profiles",), _billing_profile),
    Section("promotion_codes", ("promo_redemptions",), _promotion_codes),
    Section("balance_alerts", ("balance_alerts",), _balance_alerts),
    Section("key_spend_alerts", ("key_spend_alerts",), _key_spend_alerts),
    Section("video_jobs", ("video_jobs",), _video_jobs),
    Section("outputs", ("stored_outputs",), _outputs),
    Section("webhook_deliveries", ("webhook_deliveries",), _webhook_deliveries),
    Section("idempotency_records", ("idempotency_records",), _idempotency),
    Section("operator_actions", ("audit_log",), _operator_actions),
)
