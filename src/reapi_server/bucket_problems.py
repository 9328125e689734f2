"""What an operator is told when the S3 bucket of `storage_backend = "s3"` does not answer the
start-up check (`HeadBucket`): which of the settings to look at, rather than boto3's bare
`ClientError`, which a bucket that does not exist, refused credentials and a wrong region all
raise alike. Only S3's status and error code are read, never its message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["BucketProblem", "bucket_problem"]

#: S3's status codes for a HEAD (it has no body, so no error code but the status).
_MISSING = ("404", "NoSuchBucket")
_REFUSED = ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch")
_ELSEWHERE = ("301", "PermanentRedirect", "AuthorizationHeaderMalformed")


@dataclass(frozen=True, slots=True)
class BucketProblem:
    text: str
    #: False for an outage (the gateway starts and answers 502 until the store is back); True
    #: for a bucket that is not there: every output would fail until the settings change.
    fatal: bool


def bucket_problem(error: BaseException) -> BucketProblem:
    response: Any = getattr(error, "response", None)
    code = ""
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
    if code in _MISSING:
        return BucketProblem(
            "s3: the bucket s3_bucket names does not exist at this endpoint (404): create it,"
            " or correct s3_bucket (and s3_endpoint_url)",
            fatal=True,
        )
    if code in _REFUSED:
        return BucketProblem(
            f"s3: the store refused access to the bucket ({code}): check s3_access_key_id and"
            " s3_secret_access_key, and that the key may read and write the bucket",
            fatal=False,
        )
    if code in _ELSEWHERE:
        return BucketProblem(
            f"s3: the bucket is in another region than s3_region ({code}): set s3_region to"
            " the bucket's (R2: auto)",
            fatal=False,
        )
    if type(error).__name__ == "NoCredentialsError":
        return BucketProblem(
            "s3: no credentials for the store: set s3_access_key_id and s3_secret_access_key"
            " (or give the host an AWS role)",
            fatal=False,
        )
    detail = f"{type(error).__name__} {code}" if code else type(error).__name__
    return BucketProblem(f"s3: bucket unreachable ({detail})", fatal=False)
