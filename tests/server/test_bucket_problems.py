"""The S3 bucket's start-up check names the setting to look at: boto3's `ClientError`, which a
bucket that does not exist, refused credentials and a wrong region all raise alike, was all
`check-config` and `serve` said (`s3: bucket unreachable (ClientError)`), and `serve` started on
a bucket that does not exist, every output then failing with 502 though no outage would end."""

from __future__ import annotations

import asyncio

from botocore.exceptions import ClientError
from tests.server.conftest import settings_for
from tests.server.s3 import moto_server  # noqa: F401  (fixture)

from reapi_server.bucket_problems import bucket_problem
from reapi_server.config_check import check_live

#: The shared settings name the test catalog's providers (primary, backup), which the live check
#: reports as unknown to the shipped catalog, and a short secret, which it warns about; these
#: tests look at the bucket alone.
BUCKET_ALONE: dict[str, object] = {
    "provider_keys": {},
    "provider_base_urls": {},
    "secret_key": "a-test-secret-of-at-least-32-bytes",
}


def test_a_bucket_that_does_not_exist_stops_the_start(moto_server, tmp_path):  # noqa: F811
    settings = settings_for(tmp_path, **BUCKET_ALONE, **moto_server.settings("no-such-bucket-here"))
    problems = [(p.text, p.fatal) for p in asyncio.run(check_live(settings))]
    assert problems == [
        (
            "s3: the bucket s3_bucket names does not exist at this endpoint (404): create it,"
            " or correct s3_bucket (and s3_endpoint_url)",
            True,
        )
    ]


def _client_error(status: str, code: str) -> ClientError:
    response = {"Error": {"Code": code, "Message": "secret-bucket-name"}}
    return ClientError(response, "HeadBucket")  # type: ignore[arg-type]


def test_refused_credentials_and_another_region_are_named():
    refused = bucket_problem(_client_error("403", "403"))
    assert refused.text.startswith("s3: the store refused access to the bucket (403)")
    assert "s3_secret_access_key" in refused.text and not refused.fatal
    elsewhere = bucket_problem(_client_error("301", "301"))
    assert "s3_region" in elsewhere.text and not elsewhere.fatal
    outage = bucket_problem(_client_error("503", "ServiceUnavailable"))
    assert outage.text == "s3: bucket unreachable (ClientError ServiceUnavailable)"
    assert not outage.fatal
    assert all("secret-bucket-name" not in p.text for p in (refused, elsewhere, outage))


def test_no_credentials_at_all_are_named():
    from botocore.exceptions import NoCredentialsError

    missing = bucket_problem(NoCredentialsError())
    assert missing.text.startswith("s3: no credentials for the store: set s3_access_key_id")
