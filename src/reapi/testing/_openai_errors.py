"""OpenAI's error answers, `{"error": {"message", "type", "param", "code"}}`, and field checks.

Like the real API, messages quote the submitted value: reapi must reduce them to codes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from ._faults import Fault, FaultState
from ._messages import SimResponse, json_answer

__all__ = ["Fields", "OpenAIError", "status_fault_error"]


class OpenAIError(Exception):
    """Raised anywhere in the simulator; its `answer` is what the client gets."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        kind: str = "invalid_request_error",
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        error = {"message": message, "type": kind, "param": param, "code": code}
        self.answer: SimResponse = json_answer(status, {"error": error}, headers)

    @classmethod
    def invalid(cls, param: str, message: str) -> OpenAIError:
        return cls(400, message, code="invalid_value", param=param)

    @classmethod
    def unsupported(cls, param: str, model: str) -> OpenAIError:
        return cls(
            400,
            f"The '{param}' parameter is not supported with the '{model}' model.",
            code="unsupported_parameter",
            param=param,
        )


def status_fault_error(state: FaultState) -> OpenAIError | None:
    """OpenAI's 500, 503 and 429 rate limit (with Retry-After) for a fault, else None."""
    if state.fault is Fault.RATE_LIMIT:
        return OpenAIError(
            429,
            "Rate limit reached for requests. Please try again later.",
            code="rate_limit_exceeded",
            kind="requests",
            headers={"retry-after": str(state.retry_after)},
        )
    if state.fault is Fault.ERROR_500:
        return OpenAIError(
            500,
            "The server had an error while processing your request. Sorry about that!",
            kind="server_error",
        )
    if state.fault is Fault.ERROR_503:
        return OpenAIError(
            503, "The engine is currently overloaded, please try again later.", kind="server_error"
        )
    return None


def _quoted(values: Collection[str]) -> str:
    return ", ".join(f"'{v}'" for v in sorted(values))


class Fields:
    """A request's parameters, read with OpenAI's checks. Form fields arrive as text, so
    numbers and booleans are parsed from it there; JSON must carry the right types."""

    def __init__(self, values: Mapping[str, object], *, form: bool) -> None:
        self.values = values
        self.form = form

    def reject_unknown(self, known: Collection[str]) -> None:
        for name in self.values:
            if name not in known:
                raise OpenAIError(
                    400, f"Unknown parameter: '{name}'.", code="unknown_parameter", param=name
                )

    def given(self, name: str) -> bool:
        return self.values.get(name) is not None

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.values.get(name)
        if value is None:
            return default
        if not isinstance(value, str):
            raise OpenAIError(
                400,
                f"Invalid type for '{name}': expected a string, but got {type(value).__name__}.",
                code="invalid_type",
                param=name,
            )
        return value

    def required_text(self, name: str) -> str:
        value = self.text(name)
        if not value:
            raise OpenAIError(
                400,
                f"Missing required parameter: '{name}'.",
                code="missing_required_parameter",
                param=name,
            )
        return value

    def choice(self, name: str, allowed: Collection[str], default: str) -> str:
        value = self.text(name, default) or default
        if value not in allowed:
            raise OpenAIError.invalid(
                name, f"Invalid value: '{value}'. Supported values are: {_quoted(allowed)}."
            )
        return value

    def integer(self, name: str, low: int, high: int, default: int) -> int:
        value = self.values.get(name)
        if value is None:
            return default
        if self.form and isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise OpenAIError(
                400,
                f"Invalid type for '{name}': expected an integer, but got '{value}' instead.",
                code="invalid_type",
                param=name,
            )
        if not low <= value <= high:
            raise OpenAIError.invalid(
                name, f"Invalid '{name}': {value} is not between {low} and {high}."
            )
        return value

    def flag(self, name: str) -> bool:
        value = self.values.get(name)
        if self.form and isinstance(value, str) and value in ("true", "false"):
            return value == "true"
        if value is None or isinstance(value, bool):
            return bool(value)
        raise OpenAIError(
            400,
            f"Invalid type for '{name}': expected a boolean, but got '{value}' instead.",
            code="invalid_type",
            param=name,
        )
