"""What people do about their identity: sign up, sign in and out, verify their email, reset or
change their password, see and end their sessions.

Unlike the other services, these use cases open their own short transactions (on the
`Database` they are given) rather than running inside the caller's: a password hash costs tens
of milliseconds of CPU, and on SQLite no write transaction may wait on it (one writer at a time,
the API's requests included). The parts they are made of (`sessions`, `tokens`, `throttle`,
`repository`, `accounts.service`, `email.outbox.enqueue`) do run in a caller's transaction.

Signing in is two steps: `authenticate` checks the first factor and `start_session` makes the
session. Whatever comes between (a second factor) goes between those two calls; the web half
calls them from one place (`web.signin`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError

from reapi.core import translated_async

from ..accounts.service import open_account
from ..db import Database
from ..email.compose import MailComposer
from ..email.outbox import enqueue
from ..errors import GatewayError
from ..models import User, WebSession
from . import repository, sessions, tokens
from .emails import normalise_email
from .errors import (
    EmailNotVerified,
    EmailTaken,
    FormInvalid,
    InvalidCredentials,
    InvalidToken,
    SignInThrottled,
    WrongPassword,
)
from .passwords import Passwords, check_policy
from .sessions import Client, SessionPolicy
from .throttle import (
    RESET_PER_ADDRESS,
    RESET_PER_EMAIL,
    SIGN_IN_PER_ADDRESS,
    SIGN_IN_PER_EMAIL,
    SIGN_UP_PER_ADDRESS,
    VERIFY_RESEND_PER_USER,
    Counter,
    Throttle,
)
from .tokens import RESET_PASSWORD, VERIFY_EMAIL, Purpose

__all__ = [
    "CurrentSession",
    "Identity",
    "IdentityConfig",
    "SignUpForm",
    "SignedIn",
    "require_verified",
]

log = logging.getLogger("reapi_server.identity")

#: The consent kinds a person gives at sign-up besides accepting the policies.
AGE_CONSENT = "age_16_plus"


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    sessions: SessionPolicy
    #: The versions of the policies accepted at sign-up: {"terms": ..., "privacy": ...}.
    policy_versions: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class SignUpForm:
    email: str
    password: str = field(repr=False)
    #: "I am 16 or older"
    age_16_plus: bool
    #: "I accept the terms and the privacy policy"
    accept_terms: bool
    #: "Send me the newsletter" (only when the installation has one)
    newsletter: bool = False


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A session just made: the browser gets `token` as its session cookie."""

    user: User
    session_id: str
    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class CurrentSession:
    """The live session a request's cookie points to."""

    id: str
    user: User
    token: str = field(repr=False)


def require_verified(user: User) -> None:
    """The gate before anything that spends or makes money (creating API keys, buying
    credits): an unverified user may sign in and look around, not more."""
    if user.email_verified_at is None:
        raise EmailNotVerified()


class Identity:
    def __init__(
        self,
        db: Database,
        *,
        config: IdentityConfig,
        mail: MailComposer,
        throttle: Throttle,
        clock: Callable[[], float],
        passwords: Passwords | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.mail = mail
        self.throttle = throttle
        self.clock = clock
        self.passwords = passwords or Passwords()

    # -- sign-up -------------------------------------------------------------------------------

    def _check_sign_up(self, form: SignUpForm) -> str:
        errors: dict[str, str] = {}
        email = ""
        try:
            email = normalise_email(form.email)
        except GatewayError as error:
            errors["email"] = error.message
        try:
            check_policy(form.password, email=email or form.email)
        except GatewayError as error:
            errors["password"] = error.message
        if not form.age_16_plus:
            errors["age_16_plus"] = "You must be 16 or older to create an account."
        if not form.accept_terms:
            errors["accept_terms"] = "Accept the terms and the privacy policy to continue."
        if errors:
            raise FormInvalid(errors)
        return email

    async def sign_up(
        self, form: SignUpForm, client: Client, *, replacing: str | None = None
    ) -> SignedIn:
        """A new user owning a new account, signed in, unverified, with a verification mail
        on its way. Refused unless the person confirmed they are 16 or older and accepted
        the terms and privacy policy, whose versions are recorded with the time."""
        email = self._check_sign_up(form)
        counter = self.throttle.for_address(SIGN_UP_PER_ADDRESS, client.address)
        async with self.db.read() as session:
            wait = await Throttle.retry_after(session, [counter], self.clock())
            if wait is not None:
                raise SignInThrottled(wait)
            if await repository.find_user_by_email(session, email) is not None:
                raise EmailTaken()
        password_hash = await self.passwords.hash(form.password)
        now = self.clock()

        async def create() -> tuple[User, str, WebSession]:
            async with self.db.write() as session:
                user = await repository.insert_user(
                    session,
                    email=email,
                    password_hash=password_hash,
                    now=now,
                    newsletter=form.newsletter,
                )
                versions = [(AGE_CONSENT, "1")]
                versions += [(kind, v) for kind, v in self.config.policy_versions.items()]
                await repository.insert_consents(session, user.id, versions, now)
                await open_account(session, user.id, now=now)
                token = await tokens.issue(
                    session, user_id=user.id, email=email, purpose=VERIFY_EMAIL, now=now
                )
                await enqueue(session, self.mail.welcome(email, token), now)
                await Throttle.count(session, [counter], now)
                cookie, row = await sessions.start(
                    session, user.id, client, self.config.sessions, now, replacing=replacing
                )
            return user, cookie, row

        # IntegrityError: the same email signed up a moment ago.
        user, cookie, row = await translated_async(create, IntegrityError, lambda _: EmailTaken())
        log.info("user signed up", extra={"code": "sign_up"})
        return SignedIn(user, row.id, cookie)

    # -- sign-in -------------------------------------------------------------------------------

    def _sign_in_counters(self, email: str, client: Client) -> list[Counter]:
        return [
            self.throttle.for_email(SIGN_IN_PER_EMAIL, email),
            self.throttle.for_address(SIGN_IN_PER_ADDRESS, client.address),
        ]

    async def authenticate(self, email: str, password: str, client: Client) -> User:
        """The first factor: the user whose email and password these are. Throttled per
        email and per client address; the same answer, taking as long, for an unknown email,
        a wrong password and an account without a password. A hash made with weaker
        parameters than today's is replaced."""
        email = normalise_email(email)
        counters = self._sign_in_counters(email, client)
        async with self.db.read() as session:
            wait = await Throttle.retry_after(session, counters, self.clock())
            if wait is not None:
                raise SignInThrottled(wait)
            user = await repository.find_user_by_email(session, email)
        stored = user.password_hash if user is not None else None
        if user is None or stored is None or not await self.passwords.verify(stored, password):
            async with self.db.write() as session:
                await Throttle.count(session, counters, self.clock())
            raise InvalidCredentials()
        if user.disabled_at is not None:
            raise GatewayError("This account is disabled.", code="account_disabled")
        fresh = await self.passwords.hash(password) if self.passwords.needs_rehash(stored) else None
        async with self.db.write() as session:
            await Throttle.clear(session, counters[:1])
            if fresh is not None:
                await repository.set_password_hash(session, user.id, fresh, replacing=stored)
        return user

    async def start_session(
        self, user: User, client: Client, *, replacing: str | None = None
    ) -> SignedIn:
        """A new session for `user`; the browser's previous session (`replacing`, its cookie
        value) ends, whoever it belonged to: no id survives a sign-in."""
        async with self.db.write() as session:
            cookie, row = await sessions.start(
                session, user.id, client, self.config.sessions, self.clock(), replacing=replacing
            )
        return SignedIn(user, row.id, cookie)

    async def current(self, cookie: str) -> CurrentSession | None:
        """The live session behind a session cookie; its last-seen time is kept (at most one
        write a minute)."""
        now = self.clock()
        policy = self.config.sessions
        async with self.db.read() as session:
            found = await sessions.find(session, cookie, policy, now)
        if found is None:
            return None
        row, user = found
        if now - row.last_seen_at >= policy.touch_seconds:
            async with self.db.write() as session:
                await repository.touch_session(session, row.id, now)
        return CurrentSession(row.id, user, cookie)

    async def sign_out(self, cookie: str) -> None:
        token_hash = sessions.hash_token(cookie)
        if token_hash is not None:
            async with self.db.write() as session:
                await repository.delete_sessions(session, token_hash=token_hash)

    # -- email verification --------------------------------------------------------------------

    async def send_verification(self, user: User) -> None:
        """Another verification mail (the latest link is the only one that works)."""
        if user.email_verified_at is not None:
            return
        counter = self.throttle.for_user(VERIFY_RESEND_PER_USER, user.id)
        now = self.clock()
        async with self.db.write() as session:
            wait = await Throttle.retry_after(session, [counter], now)
            if wait is not None:
                raise SignInThrottled(wait)
            await Throttle.count(session, [counter], now)
            token = await tokens.issue(
                session, user_id=user.id, email=user.email, purpose=VERIFY_EMAIL, now=now
            )
            await enqueue(session, self.mail.verify_email(user.email, token), now)

    async def token_email(self, token: str, purpose: Purpose) -> str | None:
        """The address a link's token was sent to, if it would work now (the GET of its
        page: nothing is used); None if it would not."""
        async with self.db.read() as session:
            found = await tokens.peek(session, token, purpose, self.clock())
        return found.email if found is not None else None

    async def verify_email(self, token: str) -> None:
        now = self.clock()
        async with self.db.write() as session:
            used = await tokens.consume(session, token, VERIFY_EMAIL, now)
            if used is None or not await repository.mark_email_verified(
                session, used.user_id, used.email, now
            ):
                raise InvalidToken()

    # -- passwords -----------------------------------------------------------------------------

    async def accept_reset_request(self, email: str, client: Client) -> str:
        """The part of "reset my password" done before answering: the address is well formed
        and this client has not asked too often. Says nothing about whether the account
        exists; `send_password_reset` does the rest after the answer has gone."""
        email = normalise_email(email)
        counter = self.throttle.for_address(RESET_PER_ADDRESS, client.address)
        now = self.clock()
        async with self.db.write() as session:
            wait = await Throttle.retry_after(session, [counter], now)
            if wait is not None:
                raise SignInThrottled(wait)
            await Throttle.count(session, [counter], now)
        return email

    async def send_password_reset(self, email: str) -> None:
        """Mail a reset link if `email` has an account (and has not had too many lately);
        silently nothing otherwise. Run after the response: its work must not show in it."""
        counter = self.throttle.for_email(RESET_PER_EMAIL, email)
        now = self.clock()
        async with self.db.write() as session:
            if await Throttle.retry_after(session, [counter], now) is not None:
                return
            await Throttle.count(session, [counter], now)
            user = await repository.find_user_by_email(session, email)
            if user is None or user.disabled_at is not None:
                return
            token = await tokens.issue(
                session, user_id=user.id, email=email, purpose=RESET_PASSWORD, now=now
            )
            await enqueue(session, self.mail.reset_password(email, token), now)

    async def reset_password(
        self, token: str, password: str, *, current: CurrentSession | None, client: Client
    ) -> SignedIn | None:
        """Set a new password with a reset link. Every session of the user ends; if this
        browser was signed in as that user, it gets a new session (returned). The link
        proves the address, so the email counts as verified, and the sign-in throttle on
        it is cleared (the owner is never locked out)."""
        async with self.db.read() as session:
            found = await tokens.peek(session, token, RESET_PASSWORD, self.clock())
            user = await repository.get_user(session, found.user_id) if found else None
        if found is None or user is None:
            raise InvalidToken()
        check_policy(password, email=user.email)
        new_hash = await self.passwords.hash(password)
        now = self.clock()
        async with self.db.write() as session:
            used = await tokens.consume(session, token, RESET_PASSWORD, now)
            if used is None:
                raise InvalidToken()
            await repository.set_password_hash(session, user.id, new_hash)
            await repository.mark_email_verified(session, user.id, used.email, now)
            await repository.delete_sessions(session, user_id=user.id)
            await Throttle.clear(session, [self.throttle.for_email(SIGN_IN_PER_EMAIL, user.email)])
            await enqueue(session, self.mail.password_changed(user.email, now), now)
            signed_in = None
            if current is not None and current.user.id == user.id:
                cookie, row = await sessions.start(
                    session, user.id, client, self.config.sessions, now
                )
                signed_in = SignedIn(user, row.id, cookie)
        return signed_in

    async def change_password(
        self, current: CurrentSession, old_password: str, new_password: str, client: Client
    ) -> SignedIn:
        """Change the signed-in user's password: every other session ends, this one gets a
        new id, and a "your password was changed" mail goes to the user."""
        user = current.user
        counter = self.throttle.for_email(SIGN_IN_PER_EMAIL, user.email)
        async with self.db.read() as session:
            wait = await Throttle.retry_after(session, [counter], self.clock())
            if wait is not None:
                raise SignInThrottled(wait)
            fresh_user = await repository.get_user(session, user.id)
        stored = fresh_user.password_hash if fresh_user is not None else None
        if not await self.passwords.verify(stored, old_password):
            async with self.db.write() as session:
                await Throttle.count(session, [counter], self.clock())
            raise WrongPassword()
        check_policy(new_password, email=user.email)
        new_hash = await self.passwords.hash(new_password)
        now = self.clock()
        async with self.db.write() as session:
            await repository.set_password_hash(session, user.id, new_hash)
            await repository.delete_sessions(session, user_id=user.id)
            cookie, row = await sessions.start(session, user.id, client, self.config.sessions, now)
            await enqueue(session, self.mail.password_changed(user.email, now), now)
        return SignedIn(user, row.id, cookie)

    # -- sessions ------------------------------------------------------------------------------

    async def sessions_of(self, user_id: str) -> list[WebSession]:
        async with self.db.read() as session:
            return await repository.list_sessions(session, user_id)

    async def end_session(self, user_id: str, session_id: str) -> bool:
        """End one of the user's sessions (only theirs)."""
        async with self.db.write() as session:
            ended = await repository.delete_sessions(
                session, user_id=user_id, session_id=session_id
            )
        return ended == 1

    async def end_other_sessions(self, current: CurrentSession) -> int:
        async with self.db.write() as session:
            return await repository.delete_sessions(
                session, user_id=current.user.id, keep_id=current.id
            )
