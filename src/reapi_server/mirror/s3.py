"""Any S3-compatible store through boto3: Cloudflare R2, AWS S3, MinIO.

boto3 blocks, so every call runs on a worker thread, never on the event loop, and is retried
through short outages (`retry.py`). A body that fits in one part is one PutObject; a larger one
(a video) is a multipart upload in fixed-size parts read from the stream one at a time, so memory
holds about one part however large the object. A failed multipart upload is aborted: there is no
half object, ever. Objects carry only their (sniffed) content type and the cache rule that a
client served straight from the bucket must follow — no user data in keys or metadata.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from ..config import Settings
from .keys import OUTPUTS_PREFIX
from .retry import in_thread_with_retries
from .storage import CACHE_CONTROL, Body, OpenedObject, check_key, rechunk

__all__ = ["S3Store", "s3_client"]

log = logging.getLogger("reapi_server.mirror")

#: Pieces in which objects are read back (to serve them).
_READ_PIECE = 1024 * 1024
#: S3's smallest part, except the last one.
MIN_PART_BYTES = 5 * 1024 * 1024


def s3_client(settings: Settings) -> Any:
    """A thread-safe boto3 client for the configured endpoint (AWS when none is set)."""
    config = Config(
        signature_version="s3v4",
        # One retry policy, ours (tenacity, logged); boto3 would otherwise retry underneath it.
        retries={"total_max_attempts": 1},
        connect_timeout=settings.storage_timeout,
        read_timeout=settings.storage_timeout,
        max_pool_connections=32,
        # Checksums only where S3 requires them: R2 and MinIO reject some of the newer defaults.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        s3={"addressing_style": settings.s3_addressing_style},
    )
    key_id = settings.s3_access_key_id
    secret = settings.s3_secret_access_key
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=key_id.get_secret_value() if key_id else None,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
        config=config,
    )


class S3Store:
    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        part_bytes: int = 8 * 1024 * 1024,
        attempts: int = 4,
        public_base_url: str | None = None,
        presign_seconds: int = 0,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.part_bytes = max(part_bytes, MIN_PART_BYTES)
        self.attempts = attempts
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.presign_seconds = presign_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Store:
        assert settings.s3_bucket is not None  # checked by Settings
        return cls(
            s3_client(settings),
            settings.s3_bucket,
            part_bytes=settings.storage_part_bytes,
            attempts=settings.storage_retries + 1,
            public_base_url=settings.s3_public_base_url,
            presign_seconds=settings.s3_presign_seconds,
        )

    async def _call(self, operation: str, **kwargs: Any) -> Any:
        return await in_thread_with_retries(
            self.attempts, getattr(self.client, operation), Bucket=self.bucket, **kwargs
        )

    async def put(self, key: str, body: Body, content_type: str) -> int:
        check_key(key)
        pieces = rechunk(body, self.part_bytes)
        first = await anext(pieces, b"")
        if len(first) < self.part_bytes:  # the whole body: one request
            await self._call(
                "put_object",
                Key=key,
                Body=first,
                ContentType=content_type,
                CacheControl=CACHE_CONTROL,
            )
            return len(first)
        return await self._put_multipart(key, content_type, first, pieces)

    async def _put_multipart(
        self, key: str, content_type: str, first: bytes, rest: AsyncIterator[bytes]
    ) -> int:
        started = await self._call(
            "create_multipart_upload",
            Key=key,
            ContentType=content_type,
            CacheControl=CACHE_CONTROL,
        )
        upload_id: str = started["UploadId"]
        parts: list[dict[str, Any]] = []
        size = 0
        piece: bytes | None = first
        try:
            while piece is not None:
                number = len(parts) + 1
                reply = await self._call(
                    "upload_part", Key=key, UploadId=upload_id, PartNumber=number, Body=piece
                )
                parts.append({"ETag": reply["ETag"], "PartNumber": number})
                size += len(piece)
                piece = None  # let the part go before the next one is read
                piece = await anext(rest, None)
            await self._call(
                "complete_multipart_upload",
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            await self._abort(key, upload_id)
            raise
        return size

    async def _abort(self, key: str, upload_id: str) -> None:
        """Shielded: a cancelled upload is aborted too. If the store is down, the parts stay
        until the bucket's lifecycle rule for incomplete uploads removes them."""
        with anyio.CancelScope(shield=True):
            try:
                await in_thread_with_retries(
                    1,
                    self.client.abort_multipart_upload,
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                )
            except Exception as exc:
                log.warning("multipart abort failed", extra={"code": type(exc).__name__})

    async def open(self, key: str) -> OpenedObject | None:
        try:
            reply = await self._call("get_object", Key=check_key(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        stream = reply["Body"]

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                piece: bytes = await anyio.to_thread.run_sync(stream.read, _READ_PIECE)
                if not piece:
                    return
                yield piece

        async def close() -> None:
            stream.close()

        content_type = reply.get("ContentType") or "application/octet-stream"
        return OpenedObject(content_type, int(reply["ContentLength"]), chunks(), close)

    async def delete(self, key: str) -> None:
        await self._call("delete_object", Key=check_key(key))

    async def delete_prefix(self, prefix: str) -> None:
        check_key(prefix)
        await in_thread_with_retries(self.attempts, self._delete_prefix, prefix=prefix)

    def _delete_prefix(self, prefix: str) -> None:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        for page in pages:
            keys = [{"Key": item["Key"]} for item in page.get("Contents", ())]
            if not keys:
                continue
            reply = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True}
            )
            if reply.get("Errors"):
                raise RuntimeError(f"{len(reply['Errors'])} objects were not deleted")

    async def sweep_abandoned(self, before: float) -> int:
        return await in_thread_with_retries(self.attempts, self._sweep_abandoned, before=before)

    def _sweep_abandoned(self, before: float) -> int:
        """Multipart uploads begun before `before`: their process died between the first part
        and the last (a live upload is aborted by `put` itself when it fails). Only under
        `outputs/`: the bucket may hold what is not the gateway's."""
        aborted = 0
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=OUTPUTS_PREFIX
        )
        for page in pages:
            for upload in page.get("Uploads", ()):
                if upload["Initiated"].timestamp() >= before:
                    continue
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                aborted += 1
        return aborted

    def url(self, key: str) -> str | None:
        if self.public_base_url:
            return f"{self.public_base_url}/{check_key(key)}"
        if self.presign_seconds > 0:
            # Signed locally: no request leaves the process.
            url: str = self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": check_key(key)},
                ExpiresIn=self.presign_seconds,
            )
            return url
        return None
