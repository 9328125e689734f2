"""The one allowlist of span attribute names, as `logging.ALLOWED` is for log records.

Every span the gateway exports passes `admit` on its way out (`export.AllowlistExporter`), so
nothing set anywhere can go around it: an attribute whose name is not listed is dropped, a text
value is cut short, a value of any other type than text, number or flag is dropped. Under these
names go only values the gateway makes or the operator configures: methods, route templates,
status codes, the gateway's own request ids, catalog names, hosts from the configuration,
counts, durations, outcome classes. Never a body, prompt, header, query string, path, URL or key:
add a name here only for such a value.

Imports nothing from OpenTelemetry.
"""

from __future__ import annotations

from collections.abc import Mapping

from ...mirror.keys import OUTPUTS_PREFIX, is_task_id

__all__ = ["ALLOWED", "MAX_TEXT", "Value", "admit", "key_kind"]

ALLOWED: frozenset[str] = frozenset(
    {
        # The request (the SERVER span).
        "http.request.method",  # a known method, or OTHER
        "http.route",  # the route's template: never the path, never its query
        "http.response.status_code",  # the gateway's answer (or, on an attempt, the upstream's)
        "reapi.request_id",  # the gateway's own id (X-Request-Id)
        "reapi.model",  # a catalog model id, once the catalog has resolved it
        "reapi.provider",  # a catalog provider name
        "reapi.attempts",
        "error.type",  # an exception's type name
        # Each upstream attempt (CLIENT spans).
        "reapi.route",  # provider/upstream model, from the catalog
        "server.address",  # the provider's host, from the configuration
        "server.port",
        "reapi.attempt.number",
        "reapi.attempt.failover",  # started after an earlier attempt failed
        "reapi.attempt.hedge",  # started beside an attempt still running
        "reapi.attempt.outcome",  # ok | error | cancelled | crashed
        "reapi.attempt.code",  # the error's stable code
        "reapi.duration_ms",
        # Storage calls.
        "reapi.storage.backend",  # local | s3
        "reapi.storage.key_kind",  # what `key_kind` makes of a key: never the key
        "reapi.storage.bytes",
        "reapi.storage.found",
        # Database units of work.
        "db.system.name",  # sqlite | postgresql
        "reapi.db.kind",  # grouped (group commit) | write | read
        "reapi.db.batch_size",  # requests' writes in the group commit that carried this one
        # Storage and database calls.
        "reapi.outcome",  # ok | error | cancelled
    }
)

#: The longest text value kept (longer ones are cut): room for any value above, none for a body.
MAX_TEXT = 128

Value = str | bool | int | float


def admit(attributes: Mapping[str, object] | None) -> dict[str, Value]:
    """The attributes that may leave the process: allowlisted names, plain values."""
    admitted: dict[str, Value] = {}
    for name, value in (attributes or {}).items():
        if name not in ALLOWED:
            continue
        if isinstance(value, str):
            admitted[name] = value[:MAX_TEXT]
        elif isinstance(value, bool | int | float):
            admitted[name] = value
    return admitted


def key_kind(key: str) -> str:
    """What a storage key is, not which: `outputs/req` (an image request's outputs),
    `outputs/video`, or `other`. Keys are generated ids; a trace needs only their kind."""
    if not key.startswith(OUTPUTS_PREFIX):
        return "other"
    task = key.removeprefix(OUTPUTS_PREFIX).partition("/")[0]
    return f"outputs/{task.partition('_')[0]}" if is_task_id(task) else "other"
