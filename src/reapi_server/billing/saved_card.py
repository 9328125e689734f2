"""Billing → "Remove card": the person takes their saved card off without deleting the account.
The card is detached from their Stripe customer first (so it can no longer be charged, from
here or from Stripe's dashboard), then forgotten here with automatic top-up turned off, which
had nothing left to charge. Stripe out of reach: nothing changes and the person tries again;
a card Stripe says is detached already (from its dashboard, or an earlier try whose answer was
lost) is forgotten all the same.

An account's deletion takes the cards off the same way and then deletes its Stripe customer,
which holds the person's email address there (`close_stripe_customer`); it waits for Stripe
rather than forget a card still attached there, for `DETACH_DAYS` at most."""

from __future__ import annotations

import logging
from contextlib import suppress

from . import repository
from .applying import lock_account
from .service import Billing
from .stripe_api import BillingUnavailable, StripeApi, StripeRefused

__all__ = ["DETACH_DAYS", "close_stripe_customer", "remove_saved_card"]

log = logging.getLogger(__name__)

#: How long a deleted account waits for Stripe to take its card off. A failure that lasts
#: (a key Stripe answers 401 or 403 to: revoked, rotated away, restricted) would otherwise keep
#: the account's rows for ever, and hold up the sweeper's batch for every deletion after it:
#: past this the card is forgotten here all the same, logged for the operator to detach it
#: from Stripe's dashboard (the kept payments name the customer).
DETACH_DAYS = 7
_DAY = 86_400.0


async def remove_saved_card(billing: Billing, account_id: str) -> bool:
    """Whether a card was saved (and is removed now, with any older one a purchase saved on the
    customer before it). Raises `BillingUnavailable` when Stripe could not be asked (billing
    off, an outage): the card stays, saved and attached."""
    async with billing.db.read() as session:
        profile = await repository.profile(session, account_id)
    method = profile.payment_method_id if profile is not None else None
    if profile is None or method is None:
        return False
    if billing.api is None:
        raise BillingUnavailable("billing is off: the card cannot be taken off at Stripe now")
    removed = await _take_off_methods(billing.api, profile.stripe_customer_id, method)
    async with billing.db.write() as session:
        await lock_account(session, account_id)  # as a top-up does before reading the card
        profile = await repository.profile(session, account_id)
        # Unless a purchase saved another card meanwhile: that one stays until removed too.
        if profile is not None and profile.payment_method_id in removed:
            profile.payment_method_id = None
            profile.card_label = None
            profile.auto_enabled = False
            profile.updated_at = billing.clock()
    return True


async def close_stripe_customer(
    billing: Billing, account_id: str, *, closed_at: float | None = None
) -> bool:
    """The account is being deleted, and with it the only use its Stripe customer had: take
    every saved card off it (so none can be charged, from Stripe's dashboard either), then
    delete the customer, which holds the person's email address at Stripe. The kept payment
    records name the customer's id, which stays a valid reference to Stripe's payments: those
    Stripe keeps, deleted customer or not. Whether nothing is left to do there: no customer,
    done now, gone there already, or billing turned off (nothing can ask Stripe any more).
    False when Stripe could not be asked now: the deletion then keeps the profile for its next
    pass, rather than forget a card that is still chargeable; True again once the account was
    closed (`closed_at`) `DETACH_DAYS` ago: given up, logged."""
    async with billing.db.read() as session:
        profile = await repository.profile(session, account_id)
    if profile is None or billing.api is None:
        return True
    if profile.payment_method_id is None and profile.stripe_customer_id is None:
        return True
    try:
        await _take_off_methods(billing.api, profile.stripe_customer_id, profile.payment_method_id)
        if profile.stripe_customer_id is not None:
            with suppress(StripeRefused):  # deleted there already (an earlier pass, its dashboard)
                await billing.api.delete_customer(profile.stripe_customer_id)
    except BillingUnavailable as error:  # an outage: the next pass tries again
        if closed_at is not None and closed_at < billing.clock() - DETACH_DAYS * _DAY:
            log.error("saved card given up on", extra={"code": type(error).__name__})
            return True
        log.warning("saved card not detached", extra={"code": type(error).__name__})
        return False
    return True


async def _take_off_methods(api: StripeApi, customer: str | None, saved: str | None) -> set[str]:
    """Detach every payment method on the customer (cards, SEPA debits) and the saved one (a
    purchase that saves one does not take an older one off, so a customer can hold several);
    the ids taken off, or found detached already (Stripe refuses those: nothing is left)."""
    methods: set[str] = set()
    if customer is not None:
        with suppress(StripeRefused):  # the customer is gone at Stripe, its methods with it
            methods.update(await api.customer_methods(customer))
    if saved is not None:
        methods.add(saved)
    for method in sorted(methods):
        with suppress(StripeRefused):
            await api.detach_payment_method(method)
    return methods
