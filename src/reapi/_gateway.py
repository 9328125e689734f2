"""Gateway mode: the SDK speaks OpenAI's wire format to a reapi server, which does the routing.

The server's error messages are written by reapi (never copied from upstream), so unlike provider
errors they are kept and shown.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ._detached import translated
from ._exceptions import (
    APIResponseError,
    APIStatusError,
    AuthenticationError,
    InsufficientCreditsError,
    InternalServerError,
    InvalidRequestError,
    ModelNotFoundError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ReapiError,
)
from ._params import ImageParams, VideoParams
from ._payload import File, Payload
from ._secret import Secret
from .providers import Protocol, UpstreamRequest, UpstreamResponse, parse_retry_after
from .providers._util import drop_none
from .types import BinaryContent, ImagesResponse, ModelList, Video, VideoDeleted, VideoList

__all__ = ["GatewayProtocols"]

_PROVIDER = "reapi-gateway"
M = TypeVar("M", bound=BaseModel)


class GatewayProtocols:
    def __init__(self, base_url: str, api_key: Secret) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _headers(self, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._api_key.reveal()}"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    # -- answers -------------------------------------------------------------------------------
    def _error(self, response: UpstreamResponse) -> ReapiError:
        try:
            error = response.json(_PROVIDER).get("error") or {}
        except (APIResponseError, AttributeError):
            error = {}
        error = error if isinstance(error, dict) else {}
        message = str(error.get("message") or f"the gateway answered HTTP {response.status}")
        code = error.get("code") if isinstance(error.get("code"), str) else None
        common: dict[str, Any] = {
            "code": code,
            "provider": _PROVIDER,
            "status": response.status,
            "request_id": response.header("x-request-id"),
            "param": error.get("param") if isinstance(error.get("param"), str) else None,
        }
        status = response.status
        if status == 429:
            return RateLimitError(
                message, retry_after=parse_retry_after(response.header("retry-after")), **common
            )
        if status == 404 and code == "model_not_found":
            return ModelNotFoundError(message, **common)
        kinds: dict[int, type[ReapiError]] = {
            400: InvalidRequestError,
            401: AuthenticationError,
            402: InsufficientCreditsError,
            403: PermissionDeniedError,
            404: NotFoundError,
            409: InvalidRequestError,
            413: InvalidRequestError,
            422: InvalidRequestError,
        }
        kind = kinds.get(status, InternalServerError if status >= 500 else APIStatusError)
        return kind(message, **common)

    def _parse(self, response: UpstreamResponse, model: type[M]) -> M:
        if response.status >= 400:
            raise self._error(response)
        body = response.json(_PROVIDER)
        return translated(
            lambda: model.model_validate(body),
            ValidationError,
            lambda _: APIResponseError(
                "the gateway's answer does not have the expected shape", provider=_PROVIDER
            ),
        )

    # -- images --------------------------------------------------------------------------------
    def images(
        self, params: ImageParams, payload: Payload, *, edit: bool, idempotency_key: str | None
    ) -> Protocol[ImagesResponse]:
        fields: dict[str, Any] = drop_none(
            {
                "model": params.model,
                "prompt": payload.get("prompt"),
                "n": params.n,
                "size": params.size,
                "aspect_ratio": params.aspect_ratio,
                "resolution": params.resolution,
                "quality": params.quality,
                "background": params.background,
                "output_format": params.output_format,
                "output_compression": params.output_compression,
                "moderation": params.moderation,
                "response_format": params.response_format,
                "input_fidelity": params.input_fidelity,
                "seed": params.seed,
                "user": payload.get("user"),
            }
        )
        headers = self._headers(idempotency_key)
        if not edit:
            request = UpstreamRequest("POST", self._url("images/generations"), headers, json=fields)
        else:
            images: list[File] = list(payload.get("images") or ())
            name = "image[]" if len(images) > 1 else "image"
            files = [(name, (f.filename, f.content, f.content_type)) for f in images]
            mask: File | None = payload.get("mask")
            if mask is not None:
                files.append(("mask", (mask.filename, mask.content, mask.content_type)))
            request = UpstreamRequest(
                "POST",
                self._url("images/edits"),
                headers,
                data=tuple((k, str(v)) for k, v in fields.items()),
                files=tuple(files),
            )
        response = yield request
        return self._parse(response, ImagesResponse)

    # -- videos --------------------------------------------------------------------------------
    def create_video(
        self, params: VideoParams, payload: Payload, *, idempotency_key: str | None
    ) -> Protocol[Video]:
        fields: dict[str, Any] = drop_none(
            {
                "model": params.model,
                "prompt": payload.get("prompt"),
                "seconds": str(params.seconds) if params.seconds is not None else None,
                "size": params.size,
                "aspect_ratio": params.aspect_ratio,
                "resolution": params.resolution,
                "seed": params.seed,
            }
        )
        reference = payload.get("input_reference")
        headers = self._headers(idempotency_key)
        if isinstance(reference, File):
            request = UpstreamRequest(
                "POST",
                self._url("videos"),
                headers,
                data=tuple((k, str(v)) for k, v in fields.items()),
                files=(
                    (
                        "input_reference",
                        (reference.filename, reference.content, reference.content_type),
                    ),
                ),
            )
        else:
            if isinstance(reference, str):
                fields["input_reference"] = {"image_url": reference}
            request = UpstreamRequest("POST", self._url("videos"), headers, json=fields)
        response = yield request
        return self._parse(response, Video)

    def retrieve_video(self, video_id: str) -> Protocol[Video]:
        response = yield UpstreamRequest(
            "GET", self._url(f"videos/{video_id}"), self._headers(), purpose="poll"
        )
        return self._parse(response, Video)

    def list_videos(self, *, limit: int, after: str | None, order: str) -> Protocol[VideoList]:
        query = f"?limit={limit}&order={order}" + (f"&after={after}" if after else "")
        response = yield UpstreamRequest(
            "GET", self._url("videos" + query), self._headers(), purpose="poll"
        )
        return self._parse(response, VideoList)

    def delete_video(self, video_id: str) -> Protocol[VideoDeleted]:
        response = yield UpstreamRequest(
            "DELETE", self._url(f"videos/{video_id}"), self._headers(), purpose="cancel"
        )
        return self._parse(response, VideoDeleted)

    def video_content(self, video_id: str, variant: str) -> Protocol[BinaryContent]:
        response: UpstreamResponse = yield UpstreamRequest(
            "GET",
            self._url(f"videos/{video_id}/content?variant={variant}"),
            self._headers(),
            purpose="download",
            download=True,
        )
        if response.status >= 400:
            raise self._error(response)
        return BinaryContent(
            response.content, response.header("content-type") or "application/octet-stream"
        )

    def list_models(self) -> Protocol[ModelList]:
        response = yield UpstreamRequest(
            "GET", self._url("models"), self._headers(), purpose="poll"
        )
        return self._parse(response, ModelList)
