"""Two-factor authentication: a TOTP app, and ten single-use backup codes for when the app is
out of reach.

Enrolment stores a new secret (sealed) that counts for nothing until a code from the app
confirms it; confirming turns two-factor authentication on and makes the backup codes, shown
once. Every code accepted (at sign-in, at step-up, at enrolment) is used up: a TOTP code by its
30-second step, a backup code by its row. Wrong codes are throttled per user and per client
address, like passwords. Turning it off and making new backup codes need a step-up proof.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from ..email.outbox import enqueue
from ..errors import GatewayError
from ..models import User
from . import backup_codes, repository, totp
from .errors import InvalidCode, SignInThrottled
from .sessions import Client
from .throttle import SECOND_FACTOR_PER_USER, SIGN_IN_PER_ADDRESS, Counter, Throttle

if TYPE_CHECKING:
    from .service import CurrentSession, Identity, StepUp

__all__ = ["Enrolment", "TwoFactor", "TwoFactorStatus"]


@dataclass(frozen=True, slots=True)
class TwoFactorStatus:
    enabled_at: float | None
    backup_codes_left: int

    @property
    def enabled(self) -> bool:
        return self.enabled_at is not None


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A secret waiting for its first code: what the setup page shows."""

    secret: str = field(repr=False)
    #: otpauth://totp/... for the QR code.
    uri: str = field(repr=False)


class NotEnrolling(GatewayError):
    default_code = "no_enrolment"

    def __init__(self) -> None:
        super().__init__("Start setting up two-factor authentication again.", param="form")


class CodeMissing(GatewayError):
    default_code = "code_missing"

    def __init__(self) -> None:
        super().__init__("Enter the 6-digit code from your authenticator app.", param="code")


class AlreadyEnabled(GatewayError):
    http_status = 409
    default_code = "two_factor_enabled"

    def __init__(self) -> None:
        super().__init__("Two-factor authentication is on already.", param="form")


class TwoFactor:
    def __init__(self, identity: Identity) -> None:
        self._identity = identity
        self._box = totp.SecretBox(identity.keys.totp)

    def _counters(self, user_id: str, client: Client) -> list[Counter]:
        throttle = self._identity.throttle
        return [
            throttle.for_user(SECOND_FACTOR_PER_USER, user_id),
            throttle.for_address(SIGN_IN_PER_ADDRESS, client.address),
        ]

    async def status(self, user_id: str) -> TwoFactorStatus:
        async with self._identity.db.read() as session:
            user = await repository.get_user(session, user_id)
            left = await repository.count_backup_codes_left(session, user_id)
        return TwoFactorStatus(user.totp_enabled_at if user else None, left)

    # -- enrolment -----------------------------------------------------------------------------

    async def begin(self, user_id: str) -> None:
        """A new secret for the setup page (replacing any earlier unconfirmed one)."""
        async with self._identity.db.write() as session:
            user = await repository.get_user(session, user_id)
            if user is None or user.totp_enabled_at is not None:
                raise AlreadyEnabled()
            sealed = self._box.seal(user_id, totp.new_secret())
            await repository.set_totp_secret(session, user_id, sealed)

    async def enrolment(self, user_id: str) -> Enrolment | None:
        """The secret waiting for confirmation, if any."""
        async with self._identity.db.read() as session:
            user = await repository.get_user(session, user_id)
        if user is None or user.totp_secret is None or user.totp_enabled_at is not None:
            return None
        secret = self._box.open(user_id, user.totp_secret)
        uri = totp.provisioning_uri(
            secret, account=user.email, issuer=self._identity.config.site_name
        )
        return Enrolment(secret, uri)

    async def enable(self, current: CurrentSession, code: str, client: Client) -> list[str]:
        """Confirm the enrolment with a code from the app: two-factor authentication is on,
        and the ten backup codes returned here are the only copy of them."""
        identity = self._identity
        user_id = current.user.id
        counters = self._counters(user_id, client)
        async with identity.db.read() as session:
            wait = await Throttle.retry_after(session, counters, identity.clock())
            if wait is not None:
                raise SignInThrottled(wait)
            user = await repository.get_user(session, user_id)
        if user is None or user.totp_secret is None or user.totp_enabled_at is not None:
            raise NotEnrolling()
        sealed = user.totp_secret
        now = identity.clock()
        step = totp.matching_step(self._box.open(user_id, sealed), code, now, after=None)
        if step is None:
            async with identity.db.write() as session:
                await Throttle.count(session, counters, now)
            raise InvalidCode(backup_codes=False)  # there are none yet
        codes = backup_codes.generate()
        async with identity.db.write() as session:
            if not await repository.enable_totp(session, user_id, sealed=sealed, now=now):
                raise NotEnrolling()
            await repository.use_totp_step(session, user_id, step)
            await self._store_codes(session, user_id, codes, now)
            await Throttle.clear(session, counters[:1])
            await enqueue(session, identity.mail.two_factor_changed(user.email, now, on=True), now)
        return codes

    async def _store_codes(
        self, session: AsyncSession, user_id: str, codes: list[str], now: float
    ) -> None:
        key = self._identity.keys.backup_codes
        hashes = [backup_codes.digest(key, user_id, c.replace("-", "")) for c in codes]
        await repository.replace_backup_codes(session, user_id, hashes, now)

    # -- the second factor ---------------------------------------------------------------------

    async def check(self, user_id: str, code: str, client: Client) -> None:
        """Accept `code` (a current TOTP code, or an unused backup code) and use it up, or
        refuse (`InvalidCode`, or `SignInThrottled` after too many wrong codes)."""
        identity = self._identity
        if not code.strip():
            raise CodeMissing()
        counters = self._counters(user_id, client)
        async with identity.db.read() as session:
            wait = await Throttle.retry_after(session, counters, identity.clock())
            if wait is not None:
                raise SignInThrottled(wait)
            user = await repository.get_user(session, user_id)
        now = identity.clock()
        accepted = False
        if user is not None and user.totp_secret is not None and user.totp_enabled_at is not None:
            async with identity.db.write() as session:
                accepted = await self._use(session, user, code, now)
                if accepted:
                    await Throttle.clear(session, counters[:1])
        if not accepted:
            async with identity.db.write() as session:
                await Throttle.count(session, counters, now)
            raise InvalidCode()

    async def _use(self, session: AsyncSession, user: User, code: str, now: float) -> bool:
        """Use up `code` if it is one of the user's: six digits are a TOTP code, anything
        else may be a backup code."""
        user_id = user.id
        if totp.normalise_code(code) is not None:
            assert user.totp_secret is not None
            secret = self._box.open(user_id, user.totp_secret)
            step = totp.matching_step(secret, code, now, after=user.totp_last_step)
            return step is not None and await repository.use_totp_step(session, user_id, step)
        normalised = backup_codes.normalise(code)
        if normalised is None:
            return False
        digest = backup_codes.digest(self._identity.keys.backup_codes, user_id, normalised)
        return await repository.use_backup_code(session, user_id, digest, now)

    # -- changes that need a step-up -----------------------------------------------------------

    async def disable(self, proof: StepUp) -> None:
        """Two-factor authentication off: the secret and the backup codes are deleted, and
        the user is told by mail."""
        identity = self._identity
        now = identity.clock()
        async with identity.db.write() as session:
            user = await repository.get_user(session, proof.user_id)
            if user is None:
                return
            await repository.set_totp_secret(session, user.id, None)
            await repository.delete_backup_codes(session, user.id)
            await enqueue(session, identity.mail.two_factor_changed(user.email, now, on=False), now)
        identity.db.personal_data_deleted()  # the secret: out of the WAL too

    async def new_backup_codes(self, proof: StepUp) -> list[str]:
        """Ten new backup codes (the old ones stop working); returned here only."""
        identity = self._identity
        codes = backup_codes.generate()
        async with identity.db.write() as session:
            user = await repository.get_user(session, proof.user_id)
            if user is None or user.totp_enabled_at is None:
                raise NotEnrolling()
            await self._store_codes(session, user.id, codes, identity.clock())
        return codes
