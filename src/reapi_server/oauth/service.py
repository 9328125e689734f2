"""Sign-in with GitHub and Google: start, finish, sign up with consent, link and unlink.

`start` sends the browser to the provider with a fresh `state`, PKCE verifier and (Google) an
OpenID Connect nonce, all kept server-side: the row is keyed by the state's SHA-256, bound to
the browser's `reapi_csrf` value (its SHA-256) and lives ten minutes. `finish` takes it back
once — from the same browser only — before asking the provider anything.

Who the provider says the person is then decides:
- an identity linked already signs its user in;
- else a user with the provider's address is linked and signed in, only if the provider says
  the address is verified, and only if that account is not one whose address was never proved
  but that has a password (someone may have made it in the owner's name, to be handed the
  account when its owner arrives: pre-account hijacking);
- else a new person: they see the consent page (16 or older, terms and privacy) first; their
  user, account and identity are made when they accept (`sign_up`), verified if the provider
  said so.
While signed in, `start(..., user=...)` links another provider to that user instead, and
`start(..., user=..., reauth=True)` signs that user in again with a provider already linked to
them: a new session, which is the "recent sign-in" a step-up asks of a user without a password.

Sessions are not made here: the web half passes the user to `complete_sign_in`, the one place
where a first factor becomes a session (and a second factor, when set, is asked for).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..accounts.service import open_account
from ..email.outbox import enqueue
from ..errors import GatewayError
from ..identity import repository as users
from ..identity import tokens
from ..identity.emails import normalise_email
from ..identity.errors import EmailTaken, FormInvalid, SignInThrottled
from ..identity.service import Identity, consent_errors
from ..identity.sessions import Client
from ..identity.throttle import SIGN_UP_PER_ADDRESS, Throttle
from ..identity.tokens import VERIFY_EMAIL
from ..links import Links
from ..models import OAuthIdentity, OAuthRequest, User
from . import repository
from .errors import (
    AccountNotVerified,
    IdentityLinkedElsewhere,
    LastSignInMethod,
    NoProviderEmail,
    NotYourIdentity,
    ProviderAlreadyLinked,
    ProviderEmailNotVerified,
    ProviderRefused,
    SignInCancelled,
    SignInExpired,
)
from .providers import Provider, ProviderIdentity

__all__ = [
    "CONSENT_TTL",
    "REQUEST_TTL",
    "ConsentNeeded",
    "Linked",
    "OAuthSignIn",
    "Outcome",
    "PendingSignUp",
    "SignIn",
]

log = logging.getLogger("reapi_server.oauth")

#: A sign-in sent to a provider must come back within this many seconds.
REQUEST_TTL = 600.0
#: The consent page waits this long for a new person to accept.
CONSENT_TTL = 1800.0

SIGN_IN, LINK, REAUTH, CONSENT = "sign_in", "link", "reauth", "consent"
#: `OAuthRequest.next_url` holds this much.
_LONGEST_NEXT_URL = 512


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SignIn:
    """Sign `user` in (through `complete_sign_in`) and go to `next_url`."""

    user: User
    next_url: str


@dataclass(frozen=True, slots=True)
class Linked:
    """The provider is linked to the signed-in user."""

    label: str


@dataclass(frozen=True, slots=True)
class ConsentNeeded:
    """A new person: show them the consent page."""


Outcome = SignIn | Linked | ConsentNeeded


@dataclass(frozen=True, slots=True)
class PendingSignUp:
    """What the consent page shows: the provider and the address it gave."""

    label: str
    email: str
    email_verified: bool


class OAuthSignIn:
    def __init__(self, identity: Identity, providers: Mapping[str, Provider], links: Links):
        self.identity = identity
        self.db = identity.db
        self.providers = dict(providers)
        self.links = links

    def provider(self, name: str) -> Provider | None:
        return self.providers.get(name)

    def callback_url(self, provider: Provider) -> str:
        return self.links.page(f"/auth/{provider.name}/callback")

    def _label(self, name: str) -> str:
        found = self.providers.get(name)
        return found.label if found is not None else name

    # -- start -------------------------------------------------------------------------------

    async def start(
        self,
        provider: Provider,
        *,
        browser_id: str,
        next_url: str,
        user: User | None = None,
        reauth: bool = False,
    ) -> str:
        """The provider's authorization URL for this browser: to sign in, or with `user`
        (signed in) to link this provider to them, or with `reauth` too to sign them in again
        with it."""
        assert user is not None or not reauth
        if len(next_url) > _LONGEST_NEXT_URL:  # a path this long is no page of ours
            next_url = "/settings"
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(48)  # 64 characters (RFC 7636: 43 to 128)
        nonce = secrets.token_urlsafe(24) if provider.uses_nonce else None
        url = await provider.authorization_url(
            redirect_uri=self.callback_url(provider),
            state=state,
            code_verifier=verifier,
            nonce=nonce,
        )
        now = self.identity.clock()
        async with self.db.write() as session:
            await repository.insert_request(
                session,
                OAuthRequest(
                    key_hash=_sha256(state),
                    browser_hash=_sha256(browser_id),
                    provider=provider.name,
                    purpose=REAUTH if reauth else LINK if user is not None else SIGN_IN,
                    user_id=user.id if user is not None else None,
                    code_verifier=verifier,
                    nonce=nonce,
                    next_url=next_url,
                    email_verified=False,
                    created_at=now,
                    expires_at=now + REQUEST_TTL,
                ),
            )
        return url

    # -- finish ------------------------------------------------------------------------------

    async def _take_request(
        self, provider: Provider, state: str, browser_id: str
    ) -> OAuthRequest | None:
        """The request `state` names, used up, if this browser started it for this provider
        less than ten minutes ago; None otherwise (and nothing used up for another browser)."""
        if not state:
            return None
        key, browser = _sha256(state), _sha256(browser_id)
        async with self.db.write() as session:
            row = await repository.find_request(session, key)
            if (
                row is None
                or row.provider != provider.name
                or row.purpose not in (SIGN_IN, LINK, REAUTH)
                or row.browser_hash != browser
                or not await repository.delete_request(session, key, browser)
            ):
                return None
        return row if row.expires_at > self.identity.clock() else None

    async def finish(
        self,
        provider: Provider,
        query: Mapping[str, str],
        *,
        browser_id: str,
        current: User | None,
    ) -> Outcome:
        """The provider's redirect back (`code` and `state`, or `error` and `state`)."""
        row = await self._take_request(provider, query.get("state", ""), browser_id)
        if row is None:
            raise SignInExpired(provider.label)
        if "error" in query:
            if query["error"] == "access_denied":
                raise SignInCancelled(provider.label)
            raise ProviderRefused(provider.label)
        code = query.get("code", "")
        if not code or row.code_verifier is None:
            raise ProviderRefused(provider.label)
        found = await provider.identity(
            code=code,
            redirect_uri=self.callback_url(provider),
            code_verifier=row.code_verifier,
            nonce=row.nonce,
            now=self.identity.clock(),
        )
        if row.purpose in (LINK, REAUTH):
            if current is None or current.id != row.user_id:
                raise SignInExpired(provider.label)
            if row.purpose == REAUTH:
                return await self._again(provider, current, found, row.next_url)
            return await self._link(provider, current, found)
        return await self._sign_in(provider, found, row.next_url, _sha256(browser_id))

    async def _sign_in(
        self, provider: Provider, found: ProviderIdentity, next_url: str, browser_hash: str
    ) -> Outcome:
        email = _address(found.email)
        now = self.identity.clock()
        async with self.db.write() as session:
            linked = await repository.find_identity(session, provider.name, found.subject)
            if linked is not None:
                user = await users.get_user(session, linked.user_id)
                assert user is not None  # the identity goes with its user
                return SignIn(_enabled(user), next_url)
            if email is None:
                raise NoProviderEmail(provider.label)
            existing = await users.find_user_by_email(session, email)
            if existing is None:
                await repository.delete_requests_of_browser(session, browser_hash, CONSENT)
                await repository.insert_request(
                    session,
                    OAuthRequest(
                        key_hash=_sha256(secrets.token_urlsafe(32)),
                        browser_hash=browser_hash,
                        provider=provider.name,
                        purpose=CONSENT,
                        next_url=next_url,
                        subject=found.subject,
                        email=email,
                        email_verified=found.email_verified,
                        created_at=now,
                        expires_at=now + CONSENT_TTL,
                    ),
                )
                return ConsentNeeded()
            if not found.email_verified:
                raise ProviderEmailNotVerified(provider.label)
            if existing.email_verified_at is None and existing.password_hash is not None:
                raise AccountNotVerified(provider.label)
            if await repository.identity_of_user(session, existing.id, provider.name):
                raise ProviderAlreadyLinked(provider.label)
            _enabled(existing)
            await repository.insert_identity(
                session,
                user_id=existing.id,
                provider=provider.name,
                subject=found.subject,
                email=email,
                now=now,
            )
            # The provider vouches for the address: it is proved as a link in a mail would.
            await users.mark_email_verified(session, existing.id, email, now)
        log.info("provider identity linked at sign-in", extra={"code": provider.name})
        return SignIn(existing, next_url)

    async def _again(
        self, provider: Provider, user: User, found: ProviderIdentity, next_url: str
    ) -> Outcome:
        """The signed-in user signs in again: only with the identity linked to them."""
        async with self.db.read() as session:
            linked = await repository.find_identity(session, provider.name, found.subject)
        if linked is None or linked.user_id != user.id:
            raise NotYourIdentity(provider.label)
        log.info("signed in again with a provider", extra={"code": provider.name})
        return SignIn(_enabled(user), next_url)

    async def _link(self, provider: Provider, user: User, found: ProviderIdentity) -> Outcome:
        async with self.db.write() as session:
            linked = await repository.find_identity(session, provider.name, found.subject)
            if linked is not None:
                if linked.user_id == user.id:
                    return Linked(provider.label)
                raise IdentityLinkedElsewhere(provider.label)
            if await repository.identity_of_user(session, user.id, provider.name):
                raise ProviderAlreadyLinked(provider.label)
            await repository.insert_identity(
                session,
                user_id=user.id,
                provider=provider.name,
                subject=found.subject,
                email=_address(found.email),
                now=self.identity.clock(),
            )
        log.info("provider identity linked", extra={"code": provider.name})
        return Linked(provider.label)

    # -- a new person's consent ----------------------------------------------------------------

    async def pending(self, browser_id: str) -> PendingSignUp | None:
        """This browser's sign-up waiting for consent, if any."""
        async with self.db.read() as session:
            row = await repository.latest_request_of_browser(
                session, _sha256(browser_id), CONSENT, self.identity.clock()
            )
        if row is None or row.email is None:
            return None
        return PendingSignUp(self._label(row.provider), row.email, row.email_verified)

    async def cancel_sign_up(self, browser_id: str) -> None:
        """The person left the consent page without an account (someone under 16, say): what
        the provider said about them goes now, not when the sign-in would have expired."""
        async with self.db.write() as session:
            await repository.delete_requests_of_browser(session, _sha256(browser_id), CONSENT)

    async def sign_up(
        self,
        browser_id: str,
        *,
        age_16_plus: bool,
        accept_terms: bool,
        client: Client,
        newsletter: bool = False,
    ) -> tuple[User, str]:
        """The new person accepted: their user (verified if the provider said so, with their
        newsletter choice), their account and the identity, and the consents with the
        policies' versions. The welcome mail goes out, with a verification link when the
        provider had not verified the address. Returns the user and where to go once signed
        in."""
        errors = consent_errors(age_16_plus, accept_terms)
        if errors:
            raise FormInvalid(errors)
        created = await self._create(browser_id, client, newsletter)
        if created is None:  # the same address or identity, a moment ago
            raise EmailTaken()
        user, provider, next_url = created
        log.info("user signed up", extra={"code": "sign_up_" + provider})
        return user, next_url

    async def _create(
        self, browser_id: str, client: Client, newsletter: bool
    ) -> tuple[User, str, str] | None:
        """The new user, their provider and where they go next; None when the address or the
        identity was taken meanwhile (the database's error holds the address: it goes no
        further than here)."""
        identity = self.identity
        counter = identity.throttle.for_address(SIGN_UP_PER_ADDRESS, client.address)
        browser = _sha256(browser_id)
        now = identity.clock()
        try:
            async with self.db.write() as session:
                wait = await Throttle.retry_after(session, [counter], now)
                if wait is not None:
                    raise SignInThrottled(wait)
                row = await repository.latest_request_of_browser(session, browser, CONSENT, now)
                if row is None or row.email is None or row.subject is None:
                    raise SignInExpired(None)
                await repository.delete_request(session, row.key_hash, browser)
                if await repository.find_identity(session, row.provider, row.subject):
                    raise SignInExpired(self._label(row.provider))  # finished in another tab
                if await users.find_user_by_email(session, row.email) is not None:
                    raise EmailTaken()
                user = await users.insert_user(
                    session, email=row.email, password_hash=None, now=now, newsletter=newsletter
                )
                if row.email_verified:
                    await users.mark_email_verified(session, user.id, row.email, now)
                await users.insert_consents(session, user.id, identity.config.consents(), now)
                await open_account(session, user.id, now=now)
                await repository.insert_identity(
                    session,
                    user_id=user.id,
                    provider=row.provider,
                    subject=row.subject,
                    email=row.email,
                    now=now,
                )
                token = None
                if not row.email_verified:
                    token = await tokens.issue(
                        session, user_id=user.id, email=row.email, purpose=VERIFY_EMAIL, now=now
                    )
                await enqueue(session, identity.mail.welcome(row.email, token), now)
                await Throttle.count(session, [counter], now)
        except IntegrityError:
            return None
        async with self.db.read() as session:
            fresh = await users.get_user(session, user.id)
        assert fresh is not None
        return fresh, row.provider, row.next_url

    # -- settings ----------------------------------------------------------------------------

    async def identities_of(self, user_id: str) -> list[OAuthIdentity]:
        async with self.db.read() as session:
            return await repository.list_identities(session, user_id)

    async def linked_providers(self, user_id: str) -> list[Provider]:
        """The configured providers the user has an identity with: those they can sign in
        again with."""
        names = {identity.provider for identity in await self.identities_of(user_id)}
        return [p for name, p in self.providers.items() if name in names]

    async def unlink(self, user: User, identity_id: str) -> str | None:
        """Unlink one of the user's identities; its provider's label, or None if there was no
        such identity. Refused when it is the last way to sign in (no password)."""
        async with self.db.write() as session:
            # Locks the user (PostgreSQL): two unlinks at once cannot both see "one left".
            locked = await session.execute(select(User).where(User.id == user.id).with_for_update())
            fresh = locked.scalar_one_or_none()
            identities = await repository.list_identities(session, user.id)
            target = next((i for i in identities if i.id == identity_id), None)
            if fresh is None or target is None:
                return None
            label = self._label(target.provider)
            if fresh.password_hash is None and len(identities) == 1:
                raise LastSignInMethod(label)
            await repository.delete_identity(session, user.id, identity_id)
        self.db.personal_data_deleted()  # the provider's id and address: out of the WAL too
        log.info("provider identity unlinked", extra={"code": target.provider})
        return label


def _address(email: str | None) -> str | None:
    """The provider's address as identity keeps addresses; None if it is not one."""
    if email is None:
        return None
    try:
        return normalise_email(email)
    except GatewayError:
        return None


def _enabled(user: User) -> User:
    if user.disabled_at is not None:
        raise GatewayError("This account is disabled.", code="account_disabled")
    return user
