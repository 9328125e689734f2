"""What people do about their identity: sign up, sign in and out (with a second factor when
they turned it on), verify or change their email, reset or change their password, see and end
their sessions, confirm who they are before a sensitive change (step-up).

Unlike the other services, these use cases open their own short transactions (on the
`Database` they are given) rather than running inside the caller's: a password hash costs tens
of milliseconds of CPU, and on SQLite no write transaction may wait on it (one writer at a time,
the API's requests included). The parts they are made of (`sessions`, `tokens`, `throttle`,
`repository`, `accounts.service`, `email.outbox.enqueue`) do run in a caller's transaction.

Signing in is two steps: `authenticate` checks the first factor and `start_session` makes the
session. With two-factor authentication on, `start_pending` makes a pending session between
them (it reaches the code page only) and `complete_second_factor` turns it into a full one with
a new id. The web half calls these from one place (`web.signin`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from reapi.core import translated_async

from ..accounts.service import open_account
from ..db import Database
from ..email.compose import MailComposer
from ..email.outbox import enqueue
from ..errors import GatewayError
from ..models import User, WebSession
from . import devices, repository, sessions, tokens
from .emails import normalise_email
from .errors import (
    EmailNotVerified,
    EmailTaken,
    FormInvalid,
    InvalidCredentials,
    InvalidToken,
    ReauthRequired,
    SignInThrottled,
    WrongPassword,
)
from .keys import IdentityKeys
from .passwords import Passwords, check_policy
from .sessions import Client, SessionPolicy
from .throttle import (
    CHANGE_EMAIL_PER_USER,
    RESET_PER_ADDRESS,
    RESET_PER_EMAIL,
    SIGN_IN_PER_ADDRESS,
    SIGN_IN_PER_EMAIL,
    SIGN_UP_PER_ADDRESS,
    VERIFY_RESEND_PER_USER,
    Counter,
    Throttle,
)
from .tokens import CHANGE_EMAIL, RESET_PASSWORD, VERIFY_EMAIL, Purpose
from .two_factor import TwoFactor
from .user_agents import describe

__all__ = [
    "ConsentsDue",
    "CurrentSession",
    "Identity",
    "IdentityConfig",
    "SignUpForm",
    "SignedIn",
    "StepUp",
    "consent_errors",
    "require_verified",
]

log = logging.getLogger("reapi_server.identity")

#: The consent kinds a person gives at sign-up besides accepting the policies.
AGE_CONSENT = "age_16_plus"
#: A user without a password confirms who they are by a sign-in at most this old.
RECENT_SIGN_IN = 10 * 60.0


async def _refuse_if_throttled(
    session: AsyncSession, counters: Sequence[Counter], now: float
) -> None:
    """Raises SignInThrottled (with the wait) when one of `counters` is blocked."""
    wait = await Throttle.retry_after(session, counters, now)
    if wait is not None:
        raise SignInThrottled(wait)


async def _take_turn(session: AsyncSession, counters: Sequence[Counter], now: float) -> None:
    """Refused while blocked; otherwise this attempt counts against `counters`."""
    await _refuse_if_throttled(session, counters, now)
    await Throttle.count(session, counters, now)


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    sessions: SessionPolicy
    #: The versions of the policies accepted at sign-up: {"terms": ..., "privacy": ...}.
    policy_versions: Mapping[str, str]
    #: The issuer name authenticator apps show beside the TOTP codes.
    site_name: str = "reapi"

    def consents(self) -> list[tuple[str, str]]:
        """What a sign-up records (kind, version), whichever way the person signs up."""
        return [(AGE_CONSENT, "1"), *self.policy_versions.items()]


async def _cancel_account_links(session: AsyncSession, user_id: str) -> None:
    """A new password ends what someone who knew the old one (or held a session) may have set
    going: a pending email change (its link, at an address they chose, would still move the
    account there for 24 hours) and a reset link. A verification link proves only the
    person's own address: it stays."""
    for purpose in (CHANGE_EMAIL, RESET_PASSWORD):
        await repository.delete_unused_tokens(session, user_id, purpose.name)


def consent_errors(age_16_plus: bool, accept_terms: bool) -> dict[str, str]:
    """Field → message for what a person signing up has not confirmed (any way of signing up
    asks the same)."""
    errors = {}
    if not age_16_plus:
        errors["age_16_plus"] = "You must be 16 or older to create an account."
    if not accept_terms:
        errors["accept_terms"] = "Accept the terms and the privacy policy to continue."
    return errors


@dataclass(frozen=True, slots=True)
class ConsentsDue:
    """What a signed-in user has still to confirm (`Identity.consents_due`)."""

    #: "I am 16 or older" was never asked (an operator made the account).
    age: bool
    #: The policies ("terms", "privacy") accepted before in an older version.
    changed: tuple[str, ...] = ()


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
    #: When this session began (a sign-in): a recent one stands for a re-authentication.
    signed_in_at: float = 0.0
    #: A pending sign-in: the second factor is still due.
    awaiting_second_factor: bool = False
    #: The user has not confirmed what a sign-up asks (16 or older, the terms and the privacy
    #: policy, each policy in its current version). Until they do, only that page is theirs.
    consent_due: bool = False
    #: When the person last confirmed who they are on this session (step-up); 0: never.
    confirmed_at: float = 0.0

    @property
    def authenticated_at(self) -> float:
        """The last time the person proved it was them: the sign-in, or a later step-up."""
        return max(self.signed_in_at, self.confirmed_at)


@dataclass(frozen=True, slots=True)
class StepUp:
    """Proof that the signed-in person has just confirmed who they are (password or a recent
    sign-in, plus a second factor when on). Only `Identity.step_up` makes one; the use cases
    that need it (turning 2FA off, new backup codes, changing the email, deleting the
    account) take it as an argument, so none can be called without it."""

    user_id: str
    session_id: str
    at: float


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
        keys: IdentityKeys,
        passwords: Passwords | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.mail = mail
        self.throttle = throttle
        self.clock = clock
        self.keys = keys
        self.passwords = passwords or Passwords()
        self.two_factor = TwoFactor(self)

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
        errors.update(consent_errors(form.age_16_plus, form.accept_terms))
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
        await self._refuse_taken(email, counter)
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
                await repository.insert_consents(session, user.id, self.config.consents(), now)
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

    async def _refuse_taken(self, email: str, counter: Counter) -> None:
        """EmailTaken when `email` has an account. The answer tells whether an address has
        one, so it counts on `counter` (refused while that is blocked, whatever the address):
        else one client could ask about every address it likes."""
        async with self.db.read() as session:
            await _refuse_if_throttled(session, [counter], self.clock())
            taken = await repository.find_user_by_email(session, email) is not None
        if taken:
            async with self.db.write() as session:
                await Throttle.count(session, [counter], self.clock())
            raise EmailTaken()

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
            await _refuse_if_throttled(session, counters, self.clock())
            user = await repository.find_user_by_email(session, email)
        stored = user.password_hash if user is not None else None
        # Verified even without a hash (a dummy then): skipping argon2 for an unknown email
        # would tell by the answer's time alone which addresses have an account.
        matches = await self.passwords.verify(stored, password)
        if user is None or stored is None or not matches:
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
        value) ends, whoever it belonged to: no id survives a sign-in. A sign-in from a device
        the user has not used lately is mailed to them, if they asked for that."""
        async with self.db.write() as session:
            return await self._signed_in(session, user, client, self.clock(), replacing)

    async def _signed_in(
        self, session: AsyncSession, user: User, client: Client, now: float, replacing: str | None
    ) -> SignedIn:
        cookie, row = await sessions.start(
            session, user.id, client, self.config.sessions, now, replacing=replacing
        )
        if user.new_device_alerts and await devices.remember(
            session, self.keys.devices, user.id, client, now
        ):
            alert = self.mail.new_device_sign_in(
                user.email,
                now,
                device=describe(client.user_agent),
                address=client.address or "an unknown address",
            )
            await enqueue(session, alert, now)
        return SignedIn(user, row.id, cookie)

    async def start_pending(
        self, user: User, client: Client, *, replacing: str | None = None
    ) -> SignedIn:
        """The first factor was right and the user has two-factor authentication on: a
        pending session (it reaches the code page only, and ends in minutes)."""
        async with self.db.write() as session:
            cookie, row = await sessions.start(
                session,
                user.id,
                client,
                self.config.sessions,
                self.clock(),
                replacing=replacing,
                awaiting_second_factor=True,
            )
        return SignedIn(user, row.id, cookie)

    async def complete_second_factor(
        self, pending: CurrentSession, code: str, client: Client
    ) -> SignedIn:
        """The second factor of a pending sign-in: a TOTP code or a backup code, used up. The
        pending session ends and a full one, with a new id, begins."""
        if not pending.awaiting_second_factor:
            raise InvalidToken()
        await self.two_factor.check(pending.user.id, code, client)
        async with self.db.write() as session:
            # Once: of two completions of one pending sign-in, one makes the session.
            if not await repository.delete_sessions(session, session_id=pending.id):
                raise InvalidToken()
            return await self._signed_in(session, pending.user, client, self.clock(), None)

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
            due = not row.awaiting_second_factor and bool(
                self._missing(await repository.consents_given(session, user.id))
            )
        if now - row.last_seen_at >= policy.touch_seconds:
            async with self.db.write() as session:
                await repository.touch_session(session, row.id, now)
        return CurrentSession(
            row.id,
            user,
            cookie,
            row.created_at,
            row.awaiting_second_factor,
            consent_due=due,
            confirmed_at=row.confirmed_at or 0.0,
        )

    def _missing(self, given: set[tuple[str, str]]) -> list[tuple[str, str]]:
        """The (kind, version) a sign-up records today that the user has not given: all of
        them for a person an operator made, a policy's new version after it changed."""
        return [pair for pair in self.config.consents() if pair not in given]

    async def consents_due(self, current: CurrentSession) -> ConsentsDue:
        """What the consent page must ask this user."""
        async with self.db.read() as session:
            given = await repository.consents_given(session, current.user.id)
        kinds = {kind for kind, _ in given}
        missing = [kind for kind, _ in self._missing(given)]
        return ConsentsDue(
            age=AGE_CONSENT in missing,
            changed=tuple(k for k in missing if k != AGE_CONSENT and k in kinds),
        )

    async def give_consents(
        self, current: CurrentSession, *, age_16_plus: bool, accept_terms: bool
    ) -> None:
        """A person whose account an operator made (so no sign-up asked them) confirms what
        every sign-up asks, at their first sign-in: 16 or older, and the terms and privacy
        policy, whose versions are recorded with the time; a person who accepted an older
        version of a policy accepts the current one (the age box is not asked again).
        Consents given already are kept."""
        due = await self.consents_due(current)
        errors = consent_errors(age_16_plus or not due.age, accept_terms)
        if errors:
            raise FormInvalid(errors)
        now = self.clock()
        async with self.db.write() as session:
            given = await repository.consents_given(session, current.user.id)
            await repository.insert_consents(session, current.user.id, self._missing(given), now)
        log.info("consents given at a sign-in", extra={"code": "consents_given"})

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
            await _take_turn(session, [counter], now)
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
            await _take_turn(session, [counter], now)
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
            await _cancel_account_links(session, user.id)
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
            await _refuse_if_throttled(session, [counter], self.clock())
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
            await _cancel_account_links(session, user.id)
            cookie, row = await sessions.start(session, user.id, client, self.config.sessions, now)
            await enqueue(session, self.mail.password_changed(user.email, now), now)
        return SignedIn(user, row.id, cookie)

    # -- step-up -------------------------------------------------------------------------------

    async def step_up(
        self, current: CurrentSession, *, password: str, code: str, client: Client
    ) -> StepUp:
        """Confirm it is the person before a sensitive change: their password (throttled like
        a sign-in) or, for a user without one, a sign-in in the last ten minutes (their
        provider asked them again); then a code when two-factor authentication is on."""
        counter = self.throttle.for_email(SIGN_IN_PER_EMAIL, current.user.email)
        async with self.db.read() as session:
            await _refuse_if_throttled(session, [counter], self.clock())
            user = await repository.get_user(session, current.user.id)
        if user is None:
            raise ReauthRequired()
        if user.password_hash is not None:
            if not await self.passwords.verify(user.password_hash, password):
                async with self.db.write() as session:
                    await Throttle.count(session, [counter], self.clock())
                raise WrongPassword()
        elif self.clock() - current.signed_in_at > RECENT_SIGN_IN:
            raise ReauthRequired()
        if user.totp_enabled_at is not None:
            await self.two_factor.check(user.id, code, client)
        return StepUp(user.id, current.id, self.clock())

    def recently_authenticated(self, current: CurrentSession) -> bool:
        """Step-up ("sudo mode"): the person signed in, or confirmed who they are on this
        session, in the last ten minutes."""
        return self.clock() - current.authenticated_at <= RECENT_SIGN_IN

    async def confirm_access(
        self, current: CurrentSession, *, password: str, code: str, client: Client
    ) -> StepUp:
        """`step_up`, and the session remembers it: for the next ten minutes the actions
        that ask for a recent authentication go through without asking again."""
        proof = await self.step_up(current, password=password, code=code, client=client)
        async with self.db.write() as session:
            await repository.confirm_session(session, current.id, proof.at)
        log.info("access confirmed", extra={"code": "access_confirmed"})
        return proof

    def _check_proof(self, proof: StepUp, current: CurrentSession) -> None:
        if proof.user_id != current.user.id or proof.session_id != current.id:
            raise ReauthRequired()
        if self.clock() - proof.at > RECENT_SIGN_IN:
            raise ReauthRequired()

    # -- email change --------------------------------------------------------------------------

    async def check_new_email(self, user: User, new_email: str) -> str:
        """The new address, normalised, if the user may move to it (before any step-up). An
        address that has an account counts towards the user's email changes an hour."""
        email = normalise_email(new_email)
        if email == user.email:
            raise GatewayError(
                "That is already your email address.", code="same_email", param="email"
            )
        await self._refuse_taken(email, self.throttle.for_user(CHANGE_EMAIL_PER_USER, user.id))
        return email

    async def request_email_change(
        self, proof: StepUp, current: CurrentSession, new_email: str
    ) -> str:
        """Send a confirmation link to the new address (the change happens when it is used,
        within 24 hours) and a notice to the current one. Returns the new address."""
        self._check_proof(proof, current)
        user = current.user
        email = await self.check_new_email(user, new_email)
        counter = self.throttle.for_user(CHANGE_EMAIL_PER_USER, user.id)
        now = self.clock()
        async with self.db.write() as session:
            await _take_turn(session, [counter], now)
            token = await tokens.issue(
                session, user_id=user.id, email=email, purpose=CHANGE_EMAIL, now=now
            )
            change = self.mail.change_email(email, token, old=user.email)
            await enqueue(session, change, now, user_id=user.id)  # not their address yet
            notice = self.mail.email_change_requested(user.email, now, new=email)
            await enqueue(session, notice, now)
        log.info("email change requested", extra={"code": "email_change_requested"})
        return email

    async def confirm_email_change(
        self, token: str, *, current: CurrentSession | None, client: Client
    ) -> SignedIn | None:
        """Use a change link: the account moves to the address it was sent to (verified by
        this), every session of the user ends, links sent to the old address stop working, and
        the old address is told. If this browser was signed in as that user, it gets a new
        session (returned)."""
        now = self.clock()

        async def change() -> SignedIn | None:
            async with self.db.write() as session:
                used = await tokens.consume(session, token, CHANGE_EMAIL, now)
                user = await repository.get_user(session, used.user_id) if used else None
                if used is None or user is None:
                    raise InvalidToken()
                if await repository.find_user_by_email(session, used.email) is not None:
                    raise EmailTaken()
                old = user.email
                await repository.set_email(session, user.id, old=old, new=used.email, now=now)
                await repository.delete_sessions(session, user_id=user.id)
                await repository.delete_unused_tokens(session, user.id)
                changed = self.mail.email_changed(old, now, new=used.email)
                await enqueue(session, changed, now, user_id=user.id)  # no longer their address
                if current is None or current.user.id != user.id:
                    return None
                await session.refresh(user)
                return await self._signed_in(session, user, client, now, None)

        # IntegrityError: the address was taken a moment ago.
        signed_in = await translated_async(change, IntegrityError, lambda _: EmailTaken())
        self.db.personal_data_deleted()  # the old address: out of the WAL too
        log.info("email changed", extra={"code": "email_changed"})
        return signed_in

    # -- notifications -------------------------------------------------------------------------

    async def set_new_device_alerts(
        self, current: CurrentSession, on: bool, client: Client
    ) -> None:
        """Turn the new-device mail on (this browser is a known device from now on) or off
        (every known device is forgotten: nothing is kept for an alert nobody wants)."""
        now = self.clock()
        async with self.db.write() as session:
            await repository.set_new_device_alerts(session, current.user.id, on)
            if on:
                await devices.remember(session, self.keys.devices, current.user.id, client, now)
            else:
                await repository.delete_known_devices(session, current.user.id)

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
