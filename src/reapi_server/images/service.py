"""One image request: refuse what the catalog refuses, hold credit, load the inputs the request
names by URL or file id, run the core's failover loop, mirror the images, then settle, write the
output and usage rows (and, with an Idempotency-Key, the answer) in one transaction. The
transactions are the database's group commits (`Database.grouped`): shared with concurrent
requests.

Nothing is downloaded before the hold: a request refused for its model, its counts or its balance
costs the gateway no fetch (see `references.service`).

Whatever goes wrong after the hold (an upstream failure, a storage failure, a cancelled request)
releases it: a failed generation costs nothing.
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import replace
from typing import Any, NamedTuple

import anyio

from reapi import APIResponseError, ReapiError
from reapi.catalog import ModelSpec, Route, check_input_sizes
from reapi.core import ImageParams, Payload, Tap, input_sizes
from reapi.providers import ImageResult

from ..api_keys.auth import Principal
from ..credits import repository as credit_rows
from ..credits.repository import ClosedHold
from ..credits.service import hold_or_record_refusal, price_of
from ..errors import GatewayError, OutputsDeleted
from ..group_commit import Tx
from ..idempotency.service import CHARGED_KEY, RecordAnswer
from ..mirror.keys import task_prefix
from ..mirror.outputs import Output, file_url, mirror
from ..mirror.repository import enqueue_deletion, recorded_ids
from ..mirror.service import discard_unrecorded, queue_task_cleanup, read_outputs
from ..observability.middleware import RequestContext
from ..references.service import has_references, resolve
from ..runtime import Runtime
from ..usage import repository as usage_rows
from ..usage.outcomes import error_code, failed_attempts, record_refusal
from ..usage.service import new_row
from .drafts import SharedTap

__all__ = ["ImageAnswer", "generate", "replay"]

log = logging.getLogger("reapi_server.images")


class ImageAnswer(NamedTuple):
    """The HTTP status, the body, the snapshot (what an idempotent replay needs: the answer
    without its image bytes, plus file ids, plus the charge) and the credits charged (None: the
    settlement's commit was in doubt, and the rows said it landed): what
    `openai_api.idempotent` takes as is."""

    status: int
    body: dict[str, Any]
    snapshot: dict[str, Any]
    charged: int | None


def _body(response: dict[str, Any], data: list[dict[str, str]]) -> dict[str, Any]:
    return {**response, "data": data}


async def generate(
    rt: Runtime,
    principal: Principal,
    context: RequestContext,
    params: ImageParams,
    payload: Payload,
    *,
    edit: bool,
    base_url: str,
    record: RecordAnswer | None = None,
    tap: Tap | None = None,
) -> ImageAnswer:
    """`tap`: hears each event of a streamed upstream answer as it comes (a caller streaming,
    `openai_api.image_stream`); the request is otherwise the same."""
    endpoint = "images.edits" if edit else "images.generations"
    started = time.perf_counter()
    as_url = params.response_format == "url"
    try:
        principal.require_model(params.model)
        # The gateway always takes the bytes (to mirror them); `url` then means *our* URL.
        # (Copied only when set: a dataclass `replace` costs more than the rest of the line.)
        core_params = params
        if params.response_format is not None:
            core_params = replace(params, response_format=None)
        prepared = rt.core.prepare_image(core_params, payload, edit=edit)
    except (ReapiError, GatewayError) as error:
        await record_refusal(rt, principal, context, params.model, endpoint, error.code, started)
        raise
    context.model = prepared.spec.id
    inputs = len(payload.get("images") or ())
    cost = price_of(prepared.spec, prepared.shape, images=params.n, input_images=inputs)
    request_id = context.request_id
    now = rt.now()
    usage = new_row(
        principal,
        request_id,
        model=prepared.spec.id,
        endpoint=endpoint,
        status="pending",
        now=now,
        duration_ms=_ms(started),
    )

    async def open_request(tx: Tx) -> str | GatewayError:
        return await hold_or_record_refusal(
            tx,
            usage,
            cost,
            purpose="image",
            expires_at=now + rt.settings.image_hold_seconds,
            now=now,
            key=principal.spend(now),
        )

    # At once: the upstream call waits for it (see `group_commit`).
    hold_id = await rt.db.grouped(open_request, account=principal.account_id, at_once=True)
    if isinstance(hold_id, GatewayError):
        raise hold_id
    rt.metrics.credits_moved["reserved"].inc(cost)
    rt.live_holds.add(hold_id, now + rt.settings.image_hold_seconds)  # renewed while it runs

    images_stored = False
    # Hedged attempts run at once: the caller hears one's drafts at a time (`drafts`).
    shared = SharedTap(tap) if tap is not None else None

    async def attempt(route: Route) -> ImageResult:
        protocol = rt.core.image_attempt(prepared, route)
        first_byte = rt.router.first_byte_timeout(route)
        if shared is None:
            return await rt.engine.drive(protocol, route.provider, first_byte)
        with shared.attempt() as its_tap:
            return await rt.engine.drive(protocol, route.provider, first_byte, its_tap)

    try:
        if has_references(prepared.payload):
            prepared = replace(prepared, payload=await resolve(rt, principal, prepared.payload))
            _check_fetched_sizes(prepared.spec, prepared.payload)
        outcome = await rt.engine.run(prepared.routes, attempt, hedge_for=prepared.spec.id)
        rt.metrics.record_attempts(
            prepared.spec.id, ((a.provider, a.code) for a in outcome.attempts)
        )
        context.provider, context.attempts = outcome.route.provider, len(outcome.attempts)
        images = outcome.result.images
        if any(image.data is None for image in images):
            raise APIResponseError(
                "the provider returned an image without its bytes", provider=outcome.route.provider
            )
        try:
            files = await mirror(
                rt.store,
                rt.output_names,
                request_id,
                [Output("image", i.data or b"") for i in images],
            )
            images_stored = True
        except BaseException:
            # Images stored before the failure (an outage, or a cancelled request): no row will
            # ever point at them, so only the queue can get them deleted.
            await queue_task_cleanup(rt, request_id)
            raise
        charge = price_of(prepared.spec, prepared.shape, images=len(files), input_images=inputs)
        provider, attempts = outcome.route.provider, len(outcome.attempts)
        template = rt.core.images_answer(prepared, outcome)
        template["reapi"].pop("url_expires_at", None)  # our URLs do not expire
        inline: list[dict[str, str]] = template.pop("data")  # the images, as b64_json
        snapshot = {
            "kind": "images",
            "response": template,
            "files": [f.file_id for f in files],
            "as_url": as_url,
        }

        async def close_request(tx: Tx) -> ClosedHold | None:
            now = rt.now()
            done = usage_rows.Finish(
                request_id,
                "succeeded",
                provider=provider,
                attempts=attempts,
                duration_ms=_ms(started),
            )
            # The usage row is closed with what was charged (0 if the hold was already closed),
            # and the output rows written, by the settlement (one statement on PostgreSQL).
            stored = credit_rows.Outputs(files, principal.account_id)
            closed = await credit_rows.settle(tx, hold_id, charge, now, usage=done, outputs=stored)
            if record is not None:  # with the charge: no crash can come between the two
                snapshot[CHARGED_KEY] = closed.charged if closed is not None else 0
                await record(tx, 200, snapshot)
            return closed

        try:
            # The other image requests open now: with enough of them, the settlement's
            # transaction waits a little for theirs (`group_commit`).
            others = len(rt.live_holds) - 1
            closed = await rt.db.grouped(
                close_request, account=principal.account_id, siblings=others
            )
            charged = closed.charged if closed is not None else 0  # 0: the hold was swept
        except Exception:
            # The COMMIT's outcome may be unknown (a connection dropped during it, and group
            # commit could not learn whether it landed): the rows say whether it did.
            if not await discard_unrecorded(rt, request_id, files):
                raise
            closed = None  # settled and recorded: the answer is owed
            charged = None  # by a commit whose outcome came from the rows, not its statement
        except BaseException:
            await discard_unrecorded(rt, request_id, files)
            raise
    except BaseException as error:
        await _release(rt, principal.account_id, hold_id, request_id, error, started, images_stored)
        raise
    finally:
        rt.live_holds.discard(hold_id)
    rt.alerts.observe(closed)  # memory only: a crossing's write runs apart
    if closed is not None:
        rt.metrics.credits_moved["charged"].inc(closed.charged)
        rt.metrics.credits_moved["released"].inc(closed.amount - closed.charged)
        rt.auto_top_up.spent(principal.account_id)  # in memory: checked off the request path

    data = [{"url": file_url(base_url, f.file_id)} for f in files] if as_url else inline
    return ImageAnswer(200, _body(template, data), snapshot, charged)


def _check_fetched_sizes(spec: ModelSpec, payload: Payload) -> None:
    """The model's per-file limits on the inputs just fetched (uploads were checked with the
    request): a fetch limit above them (`fetch_max_image_bytes`) must not let through what the
    provider would refuse."""
    check_input_sizes(spec, *input_sizes(payload))


async def replay(rt: Runtime, snapshot: dict[str, Any], base_url: str) -> dict[str, Any]:
    """Rebuild a stored answer: the same images, from our storage. Once any of them was deleted
    (by its owner, or by retention) the answer cannot be given again: 410 `outputs_deleted`."""
    file_ids: list[str] = snapshot["files"]
    if snapshot["as_url"]:
        async with rt.db.read() as session:
            if len(await recorded_ids(session, file_ids)) < len(file_ids):
                raise OutputsDeleted.replayed()
        data = [{"url": file_url(base_url, file_id)} for file_id in file_ids]
    else:
        images = await read_outputs(rt, file_ids)  # a deleted one is left out
        if len(images) < len(file_ids):
            raise OutputsDeleted.replayed()
        data = [{"b64_json": base64.b64encode(image).decode()} for image in images]
    return _body(snapshot["response"], data)


async def _release(
    rt: Runtime,
    account_id: str,
    hold_id: str,
    request_id: str,
    error: BaseException,
    started: float,
    images_stored: bool,
) -> None:
    """Give the hold back and close the usage row; shielded, so a cancelled request still does.
    `images_stored`: its images were stored before it failed. The release closing the hold means the
    settlement (which writes their rows) never landed, and when the database was away the
    request could not have them deleted (`discard_unrecorded` keeps them when it cannot ask):
    the release queues them, as the sweeper's does. The queue deletes nothing a row points at."""
    provider, attempts = failed_attempts(error)
    code = error_code(error)
    duration_ms = _ms(started)  # the request's, not a later retry's

    async def release_request(tx: Tx) -> ClosedHold | None:
        now = rt.now()
        closed = await credit_rows.release(tx, hold_id, now)
        if closed is not None and images_stored:
            await enqueue_deletion(tx, task_prefix(request_id), now)
        if closed is not None:  # else settled (the usage row says so) or swept (and closed)
            await usage_rows.finish(
                tx,
                request_id,
                status="failed",
                error_code=code,
                provider=provider,
                attempts=attempts,
                duration_ms=duration_ms,
            )
        return closed

    async def release() -> None:
        closed = await rt.db.grouped(release_request, account=account_id)
        rt.alerts.observe(closed)
        if closed is not None:
            rt.metrics.credits_moved["released"].inc(closed.amount)

    with anyio.CancelScope(shield=True):  # failing, retried each second; the error stands
        await rt.pending_releases.release_or_keep(
            hold_id, release, logger=log, about={"request_id": request_id}, reraise=False
        )


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
