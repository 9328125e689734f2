"""What identity refuses, as gateway errors: each names the form field it is about (`param`)
so a page can show the message beside that field. Messages never repeat what was typed."""

from __future__ import annotations

from ..errors import GatewayError, RateLimited

__all__ = [
    "ConsentRequired",
    "EmailNotVerified",
    "EmailTaken",
    "FormInvalid",
    "InvalidCode",
    "InvalidCredentials",
    "InvalidEmail",
    "InvalidToken",
    "ReauthRequired",
    "SignInThrottled",
    "WeakPassword",
    "WrongPassword",
]


class InvalidEmail(GatewayError):
    default_code = "invalid_email"

    def __init__(self, message: str = "Enter an email address like name@example.com.") -> None:
        super().__init__(message, param="email")


class EmailTaken(GatewayError):
    http_status = 409
    default_code = "email_taken"

    def __init__(self) -> None:
        super().__init__(
            "An account with this email already exists. Sign in, or reset its password.",
            param="email",
        )


class WeakPassword(GatewayError):
    default_code = "weak_password"

    def __init__(self, message: str, *, param: str = "password") -> None:
        super().__init__(message, param=param)


class ConsentRequired(GatewayError):
    default_code = "consent_required"

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(message, param=param)


class InvalidCredentials(GatewayError):
    """The same answer for an unknown email, a wrong password and an account without one."""

    http_status = 401
    default_code = "invalid_credentials"

    def __init__(self) -> None:
        super().__init__("That email and password do not match an account.", param="password")


class WrongPassword(GatewayError):
    http_status = 401
    default_code = "wrong_password"

    def __init__(self) -> None:
        super().__init__("Your current password is not right.", param="current_password")


class InvalidCode(GatewayError):
    """A two-factor code that is wrong, used already, or not a code at all: one answer."""

    http_status = 401
    default_code = "invalid_code"

    def __init__(self, param: str = "code", *, backup_codes: bool = True) -> None:
        message = "That code is not right. Enter the current code from your app"
        message += ", or a backup code you have not used yet." if backup_codes else "."
        super().__init__(message, param=param)


class ReauthRequired(GatewayError):
    """A user without a password confirms who they are by signing in again (with their
    provider): their session must have begun minutes ago."""

    http_status = 401
    default_code = "reauthentication_required"

    def __init__(self) -> None:
        super().__init__(
            "For your security, sign out and sign in again, then come back to do this.",
            param="form",
        )


class InvalidToken(GatewayError):
    """Unknown, tampered with, expired, used already or meant for something else: one answer."""

    default_code = "invalid_token"

    def __init__(self) -> None:
        super().__init__("This link has expired or has been used already.", param="token")


class EmailNotVerified(GatewayError):
    http_status = 403
    default_code = "email_not_verified"

    def __init__(self) -> None:
        super().__init__("Verify your email address first: we sent you a link.")


class SignInThrottled(RateLimited):
    def __init__(self, retry_after: float) -> None:
        super().__init__(
            "Too many attempts. Wait a few minutes, then try again.",
            code="too_many_attempts",
            retry_after=retry_after,
        )


class FormInvalid(GatewayError):
    """Several fields at once: field name → message (the first is `param`/`message`)."""

    default_code = "invalid_form"

    def __init__(self, errors: dict[str, str]) -> None:
        first = next(iter(errors))
        super().__init__(errors[first], param=first)
        self.errors = errors
