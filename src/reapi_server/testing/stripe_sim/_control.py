"""The control API, `/__sim__/stripe/...`: JSON in and out, no key, never blocking.

Everything the Python API of `StripeSimulator` does, for a simulator in another process (the
demo, a browser journey). Deliveries it starts are reported at once; poll
`GET /__sim__/stripe/deliveries` (or `/events/{id}/deliveries`) for their answers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reapi.testing import Answer, json_answer

from ._errors import StripeError

if TYPE_CHECKING:
    from ._simulator import StripeSimulator

__all__ = ["serve_control"]

Action = Callable[["StripeSimulator", dict[str, str], dict[str, Any]], Any]
_ROUTES: list[tuple[str, re.Pattern[str], Action]] = []


def route(method: str, pattern: str) -> Callable[[Action], Action]:
    def register(action: Action) -> Action:
        _ROUTES.append((method, re.compile(pattern.replace("{id}", "(?P<id>[^/]+)")), action))
        return action

    return register


def _deliveries(items: list[Any]) -> list[dict[str, Any]]:
    return [d.to_json() for d in items]


@route("GET", "/state")
def _state(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    return {
        "base_url": sim.base_url,
        "public_url": sim.account.public_url,
        "secret_key": sim.secret_key,
        "api_version": sim.account.api_version,
        "now": sim.now(),
        "clock_offset": sim.clock.offset,
        "holding": sim.webhooks.holding,
        "held": sim.held_events(),
        "pending_deliveries": sim.webhooks.pending(),
        "webhook_endpoints": [e.to_json() for e in sim.webhook_endpoints],
        "off_session_outcomes": list(sim.account.next_outcomes),
        "tax_percent": sim.account.tax_percent,
    }


@route("GET", "/webhook_endpoints")
def _endpoints(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    return [e.to_json() for e in sim.webhook_endpoints]


@route("POST", "/webhook_endpoints")
def _add_endpoint(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    endpoint = sim.add_webhook_endpoint(
        _text(body, "url"), body.get("secret"), tuple(body.get("enabled_events") or ("*",))
    )
    return endpoint.to_json()


@route("DELETE", "/webhook_endpoints/{id}")
def _remove_endpoint(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    sim.remove_webhook_endpoint(ids["id"])
    return {"id": ids["id"], "deleted": True}


@route("POST", "/webhook_endpoints/{id}/roll_secret")
def _roll(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    endpoint = sim.roll_webhook_secret(
        ids["id"], body.get("secret"), keep_old=bool(body.get("keep_old", True))
    )
    return endpoint.to_json()


@route("POST", "/checkout_sessions/{id}/complete")
def _complete(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    return sim.complete_session(
        ids["id"],
        email=body.get("email"),
        card=str(body.get("card", "4242")),
        tax_id=body.get("tax_id"),
        pay_later=bool(body.get("pay_later", False)),
    )


@route("POST", "/checkout_sessions/{id}/decline")
def _decline(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    return sim.decline_session(ids["id"], email=body.get("email"))


@route("POST", "/checkout_sessions/{id}/settle")
def _settle(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    if not isinstance(body.get("succeeded"), bool):
        raise ValueError('"succeeded" (true or false) is required')
    return sim.settle_session(ids["id"], succeeded=body["succeeded"])


@route("POST", "/payment_intents/{id}/settle")
def _settle_intent(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    if not isinstance(body.get("succeeded"), bool):
        raise ValueError('"succeeded" (true or false) is required')
    return sim.settle_payment_intent(ids["id"], succeeded=body["succeeded"])


@route("POST", "/tax")
def _tax(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    percent = body.get("percent")
    if not isinstance(percent, int | float) or isinstance(percent, bool):
        raise ValueError('"percent" (a number) is required')
    sim.set_tax_percent(float(percent))
    return {"percent": sim.account.tax_percent}


@route("POST", "/checkout_sessions/{id}/expire")
def _expire(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    return sim.expire_session(ids["id"])


@route("GET", "/off_session_outcomes")
def _outcomes(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    return list(sim.account.next_outcomes)


@route("POST", "/off_session_outcomes")
def _queue_outcome(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    sim.queue_off_session_outcome(_text(body, "outcome"), int(body.get("count", 1)))
    return list(sim.account.next_outcomes)


@route("DELETE", "/off_session_outcomes")
def _clear_outcomes(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    sim.clear_off_session_outcomes()
    return []


@route("POST", "/refunds")
def _refund(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    amount = body.get("amount")
    return sim.refund(
        _text(body, "charge"),
        amount=None if amount is None else int(amount),
        reason=body.get("reason"),
    )


@route("POST", "/disputes")
def _open_dispute(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    amount = body.get("amount")
    return sim.open_dispute(
        _text(body, "charge"),
        amount=None if amount is None else int(amount),
        reason=str(body.get("reason", "fraudulent")),
        inquiry=bool(body.get("inquiry", False)),
    )


@route("POST", "/disputes/{id}/close")
def _close_dispute(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    return sim.close_dispute(ids["id"], _text(body, "outcome"))


@route("GET", "/objects/{id}")
def _object(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    return sim.get(ids["id"])


@route("GET", "/events")
def _events(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    return sim.events()


@route("GET", "/events/{id}/deliveries")
def _event_deliveries(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    sim.get(ids["id"])
    return _deliveries(sim.deliveries(ids["id"]))


@route("POST", "/events/{id}/resend")
def _resend(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    return _deliveries(sim.resend(ids["id"], body.get("endpoint")))


@route("POST", "/events/{id}/deliver_concurrently")
def _concurrently(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    return _deliveries(sim.deliver_concurrently(ids["id"], int(body.get("copies", 2))))


@route("POST", "/events/{id}/send_tampered")
def _tampered(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    return _deliveries(sim.send_tampered(ids["id"], _text(body, "tamper")))


@route("GET", "/deliveries")
def _all_deliveries(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    return _deliveries(sim.deliveries())


@route("POST", "/hold")
def _hold(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    sim.hold_events(bool(body.get("hold", True)))
    return {"holding": sim.webhooks.holding, "held": sim.held_events()}


@route("GET", "/held")
def _held(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    return sim.held_events()


@route("POST", "/release")
def _release(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    events = body.get("events")
    return _deliveries(sim.release_events(None if events is None else [str(e) for e in events]))


@route("GET", "/clock")
def _clock(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    return {"now": sim.now(), "offset": sim.clock.offset}


@route("POST", "/clock/advance")
def _advance(sim: StripeSimulator, ids: dict[str, str], body: dict[str, Any]) -> Any:
    now = sim.advance_clock(float(body.get("seconds", 0)))
    return {"now": now, "offset": sim.clock.offset}


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f'"{key}" (a string) is required')
    return value


def _error(status: int, message: str) -> Answer:
    return json_answer(status, {"error": {"type": "invalid_request_error", "message": message}})


def _find(method: str, path: str) -> tuple[Action, dict[str, str]] | None:
    for route_method, pattern, action in _ROUTES:
        match = pattern.fullmatch(path)
        if match and route_method == method:
            return action, match.groupdict()
    return None


def serve_control(sim: StripeSimulator, method: str, path: str, body: bytes) -> Answer:
    found = _find(method, path)
    if found is None:
        return _error(404, f"unknown control path {method} /__sim__/stripe{path[:200]}")
    action, ids = found
    try:
        fields = json.loads(body) if body.strip() else {}
        if not isinstance(fields, dict):
            raise ValueError("the body is a JSON object")
        return json_answer(200, action(sim, ids, fields))
    except StripeError as error:
        return json_answer(error.status, error.body())
    except KeyError as error:
        return _error(404, f"not found: {error.args[0] if error.args else error}")
    except (ValueError, TypeError) as error:
        return _error(400, str(error))
