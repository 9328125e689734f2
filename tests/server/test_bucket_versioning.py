"""`check-config` and `serve` say when the S3 bucket keeps what the gateway deletes: with
versioning on, deleting an object only hides it behind a delete marker, so an output deleted by
its owner, by the retention job or with an account would stay in the bucket as a noncurrent
version for ever, unless a lifecycle rule expires those. Not fatal (`serve` starts, after saying
so): the operator may rely on a rule this check cannot see."""

from __future__ import annotations

import asyncio

from tests.server.conftest import settings_for
from tests.server.s3 import moto_server  # noqa: F401  (fixture)

from reapi_server.config_check import check_live

#: The shared settings name the test catalog's providers (primary, backup), which the live check
#: reports as unknown to the shipped catalog, and a short secret, which it warns about; these
#: tests look at the bucket alone.
BUCKET_ALONE: dict[str, object] = {
    "provider_keys": {},
    "provider_base_urls": {},
    "secret_key": "a-test-secret-of-at-least-32-bytes",
}

KEPT = "s3: bucket versioning is on"


def _problems(moto_server, bucket: str, tmp_path) -> list[tuple[str, bool]]:  # noqa: F811
    settings = settings_for(tmp_path, **BUCKET_ALONE, **moto_server.settings(bucket))
    return [(p.text, p.fatal) for p in asyncio.run(check_live(settings))]


def _versioned(moto_server, status: str = "Enabled") -> str:  # noqa: F811
    bucket = moto_server.new_bucket()
    moto_server.client().put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": status}
    )
    return bucket


def _expire_noncurrent(moto_server, bucket: str, prefix: str) -> None:  # noqa: F811
    moto_server.client().put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "noncurrent",
                    "Status": "Enabled",
                    "Filter": {"Prefix": prefix},
                    "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
                }
            ]
        },
    )


def test_a_plain_bucket_is_fine(moto_server, tmp_path):  # noqa: F811
    assert _problems(moto_server, moto_server.new_bucket(), tmp_path) == []


def test_a_versioned_bucket_is_said(moto_server, tmp_path):  # noqa: F811
    for status in ("Enabled", "Suspended"):  # suspended: the versions made before stay
        [(text, fatal)] = _problems(moto_server, _versioned(moto_server, status), tmp_path)
        assert text.startswith(KEPT) and "noncurrent" in text and not fatal


def test_a_rule_expiring_noncurrent_versions_of_the_outputs_is_enough(moto_server, tmp_path):  # noqa: F811
    for prefix in ("", "outputs/"):
        bucket = _versioned(moto_server)
        _expire_noncurrent(moto_server, bucket, prefix)
        assert _problems(moto_server, bucket, tmp_path) == []
    bucket = _versioned(moto_server)
    _expire_noncurrent(moto_server, bucket, "logs/")  # not where the outputs are
    [(text, _)] = _problems(moto_server, bucket, tmp_path)
    assert text.startswith(KEPT)
