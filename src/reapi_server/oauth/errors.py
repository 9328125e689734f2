"""What sign-in with a provider refuses, as gateway errors. Each has a page title and says what
to do next; none repeats what the provider or the browser sent."""

from __future__ import annotations

from ..errors import GatewayError

__all__ = [
    "AccountNotVerified",
    "IdentityLinkedElsewhere",
    "LastSignInMethod",
    "NoProviderEmail",
    "NotYourIdentity",
    "OAuthError",
    "ProviderAlreadyLinked",
    "ProviderEmailNotVerified",
    "ProviderRefused",
    "ProviderUnavailable",
    "SignInCancelled",
    "SignInExpired",
]


class OAuthError(GatewayError):
    """A refusal shown as a page: `title` heads it, `action` is the way on (label, path)."""

    default_code = "oauth_failed"
    title = "Sign-in did not work"
    action: tuple[str, str] = ("Back to sign in", "/login")

    def __init__(self, message: str) -> None:
        super().__init__(message)


class SignInExpired(OAuthError):
    """No sign-in under way matches: no `state`, an unknown or used one, one started in
    another browser, or one older than ten minutes."""

    default_code = "oauth_state_invalid"
    title = "This sign-in has expired"

    def __init__(self, provider: str | None) -> None:
        super().__init__(
            f"Signing in with {provider or 'GitHub or Google'} was started in another browser, "
            "took too long, or was finished already. Nothing has changed: start again."
        )


class SignInCancelled(OAuthError):
    default_code = "access_denied"
    title = "Sign-in cancelled"

    def __init__(self, provider: str) -> None:
        super().__init__(
            f"You did not allow the use of your {provider} account. Nothing has changed."
        )


class ProviderRefused(OAuthError):
    """The provider answered with an error: a code used already or expired, a wrong client
    secret, an id_token that does not check out."""

    def __init__(self, provider: str) -> None:
        super().__init__(
            f"{provider} did not confirm this sign-in. Nothing has changed: start again."
        )


class ProviderUnavailable(OAuthError):
    http_status = 502
    error_type = "server_error"
    default_code = "provider_unavailable"
    title = "No answer from the provider"

    def __init__(self, provider: str) -> None:
        super().__init__(f"{provider} did not answer. Try again in a moment.")


class NoProviderEmail(OAuthError):
    default_code = "no_email"
    title = "No email address"

    def __init__(self, provider: str) -> None:
        super().__init__(
            f"{provider} did not give us an email address for your account. Add one there, or "
            "create an account with your email address and a password."
        )


class ProviderEmailNotVerified(OAuthError):
    """An account has the provider's address, but the provider has not verified it: linking
    would hand the account to whoever typed that address at the provider."""

    http_status = 409
    default_code = "provider_email_not_verified"
    title = "Sign in with your password first"

    def __init__(self, provider: str) -> None:
        super().__init__(
            f"An account here uses the email address of your {provider} account, but {provider} "
            "has not verified that address, so we cannot tell that it is yours. Sign in with "
            f"your password, then link {provider} in Settings → Security."
        )


class AccountNotVerified(OAuthError):
    """The account with the provider's address has a password but has never proved the
    address: it may have been made by someone else, waiting for its owner (pre-hijacking)."""

    http_status = 409
    default_code = "account_not_verified"
    title = "Verify your email address first"

    def __init__(self, provider: str) -> None:
        super().__init__(
            "An account here uses this email address, but the address has not been verified "
            "yet. Sign in with your password (or reset it: the reset link proves the address), "
            f"then link {provider} in Settings → Security."
        )


class IdentityLinkedElsewhere(OAuthError):
    http_status = 409
    default_code = "identity_linked_elsewhere"
    title = "Linked to another account"
    action = ("Back to settings", "/settings#sign-in-methods")

    def __init__(self, provider: str) -> None:
        super().__init__(
            f"This {provider} account is linked to another account here. Sign in with it there "
            "and unlink it first."
        )


class ProviderAlreadyLinked(OAuthError):
    http_status = 409
    default_code = "provider_already_linked"
    title = "Already linked"
    action = ("Back to settings", "/settings#sign-in-methods")

    def __init__(self, provider: str) -> None:
        super().__init__(
            f"Your account has a {provider} account linked already. Unlink it first to link "
            "another."
        )


class LastSignInMethod(OAuthError):
    http_status = 409
    default_code = "last_sign_in_method"
    title = "This is your only way to sign in"
    action = ("Back to settings", "/settings#sign-in-methods")

    def __init__(self, provider: str) -> None:
        super().__init__(
            f"{provider} is the only way to sign in to your account. Set a password first (we "
            "email you a link), or link another provider, then unlink it."
        )


class NotYourIdentity(OAuthError):
    """Signing in again to confirm it is you (step-up) with a provider account that is not the
    one linked to the signed-in user."""

    http_status = 403
    error_type = "permission_error"
    default_code = "identity_not_yours"
    title = "Not the account linked to you"
    action = ("Back to settings", "/settings")

    def __init__(self, provider: str) -> None:
        super().__init__(
            f"The {provider} account you signed in with is not the one linked to your account "
            f"here. Sign in to {provider} with that one, then try again. Nothing has changed."
        )
