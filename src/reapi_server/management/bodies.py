"""Reading the management API's JSON bodies: strict types (a boolean is not a number, a string
is not one either), unknown fields refused, messages that state the rule and never the value."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from reapi.core import translated

from ..errors import GatewayError
from ..json_api.bodies import read_json
from ..json_api.validation import describe

__all__ = ["MAX_BODY_BYTES", "parse_body"]

#: The largest body a management call takes (a key's settings are a few hundred bytes).
MAX_BODY_BYTES = 64 * 1024

M = TypeVar("M", bound=BaseModel)


def _refusal(error: BaseException) -> GatewayError:
    assert isinstance(error, ValidationError)
    message, code, param = describe(error.errors(include_input=False, include_url=False))
    return GatewayError(message, code=code, param=param)


async def parse_body(request: Request, model: type[M]) -> M:
    data: Any = await read_json(request, MAX_BODY_BYTES)
    return translated(lambda: model.model_validate(data), ValidationError, _refusal)
