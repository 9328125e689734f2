"""`reapi.webhooks`: Standard Webhooks signatures, checked against the spec's published vector."""

import base64
import json
import time

import pytest

import reapi
from reapi import ReapiError, Webhook, WebhookVerificationError, webhooks

# The test vector the Standard Webhooks project publishes with its reference libraries.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_PAYLOAD = '{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def signed(payload: str = SPEC_PAYLOAD, *, at: float | None = None, secret: str = SPEC_SECRET):
    timestamp = int(time.time() if at is None else at)
    signature = webhooks.sign(payload, msg_id=SPEC_ID, timestamp=timestamp, secret=secret)
    return {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def test_signature_matches_the_spec_vector():
    signature = webhooks.sign(
        SPEC_PAYLOAD, msg_id=SPEC_ID, timestamp=SPEC_TIMESTAMP, secret=SPEC_SECRET
    )
    assert signature == SPEC_SIGNATURE
    # the prefix is optional, and the key may be given as its bytes
    raw = base64.b64decode(SPEC_SECRET.removeprefix("whsec_"))
    assert Webhook(raw).sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_PAYLOAD) == SPEC_SIGNATURE
    assert (
        Webhook(SPEC_SECRET.removeprefix("whsec_")).sign(
            SPEC_ID, SPEC_TIMESTAMP, SPEC_PAYLOAD.encode()
        )
        == SPEC_SIGNATURE
    )


def test_the_spec_vector_verifies_at_its_time():
    headers = {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }
    event = webhooks.verify(SPEC_PAYLOAD, headers, SPEC_SECRET, now=SPEC_TIMESTAMP + 10)
    assert event == {"test": 2432232314}


def test_round_trip_returns_the_decoded_body():
    body = json.dumps({"id": "video_1", "status": "completed"}).encode()
    headers = signed(body.decode())
    assert webhooks.verify(body, headers, SPEC_SECRET) == {"id": "video_1", "status": "completed"}
    assert Webhook(SPEC_SECRET).verify(body, headers)["status"] == "completed"


def test_header_names_are_matched_without_case():
    headers = {name.title(): value for name, value in signed().items()}
    assert webhooks.verify(SPEC_PAYLOAD, headers, SPEC_SECRET) == {"test": 2432232314}


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused(missing):
    headers = signed()
    del headers[missing]
    with pytest.raises(WebhookVerificationError) as info:
        webhooks.verify(SPEC_PAYLOAD, headers, SPEC_SECRET)
    assert info.value.code == "webhook_missing_header" and missing in info.value.message


def test_a_changed_byte_is_refused():
    headers = signed()
    with pytest.raises(WebhookVerificationError) as info:
        webhooks.verify(SPEC_PAYLOAD.replace("2", "3", 1), headers, SPEC_SECRET)
    assert info.value.code == "webhook_invalid_signature"


def test_another_secret_is_refused():
    other = "whsec_" + base64.b64encode(b"another secret of 24 bytes").decode()
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(SPEC_PAYLOAD, signed(), other)


def test_another_id_is_refused():
    headers = {**signed(), "webhook-id": "msg_other"}
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(SPEC_PAYLOAD, headers, SPEC_SECRET)


@pytest.mark.parametrize(
    ("offset", "code"),
    [(-301, "webhook_timestamp_too_old"), (301, "webhook_timestamp_too_new")],
)
def test_a_stale_or_future_timestamp_is_refused(offset, code):
    headers = signed(at=time.time() + offset)
    with pytest.raises(WebhookVerificationError) as info:
        webhooks.verify(SPEC_PAYLOAD, headers, SPEC_SECRET)
    assert info.value.code == code
    # a wider tolerance lets it through
    assert webhooks.verify(SPEC_PAYLOAD, headers, SPEC_SECRET, tolerance=400)


@pytest.mark.parametrize("value", ["hello", "1.5", "-", "١٢٣", " 12 34"])
def test_a_timestamp_that_is_not_whole_seconds_is_refused(value):
    headers = {**signed(), "webhook-timestamp": value}
    with pytest.raises(WebhookVerificationError) as info:
        webhooks.verify(SPEC_PAYLOAD, headers, SPEC_SECRET)
    assert info.value.code == "webhook_invalid_timestamp"


def test_any_one_of_several_signatures_may_match():
    """Several signatures: what a sender sends while it rotates its secret."""
    valid = signed()
    other = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
    valid["webhook-signature"] = " ".join(
        [other, "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=", valid["webhook-signature"]]
    )
    assert webhooks.verify(SPEC_PAYLOAD, valid, SPEC_SECRET) == {"test": 2432232314}


def test_only_v1_signatures_count():
    headers = signed()
    headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v1a,")
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(SPEC_PAYLOAD, headers, SPEC_SECRET)


def test_the_error_is_a_reapi_error_and_never_shows_the_secret():
    with pytest.raises(ReapiError) as info:
        webhooks.verify(SPEC_PAYLOAD, {}, SPEC_SECRET)
    assert isinstance(info.value, WebhookVerificationError)
    hook = Webhook(SPEC_SECRET)
    text = repr(hook) + str(hook) + repr(info.value) + str(info.value)
    assert "MfKQ9r8G" not in text


def test_a_secret_that_is_not_base64_is_a_configuration_error():
    with pytest.raises(reapi.ConfigurationError):
        Webhook("whsec_not base64!")
    with pytest.raises(reapi.ConfigurationError):
        Webhook("")


def test_an_id_with_a_full_stop_cannot_be_signed():
    with pytest.raises(ValueError, match="full stop"):
        webhooks.sign("{}", msg_id="msg.1", timestamp=1, secret=SPEC_SECRET)


def test_exported_from_the_package():
    assert reapi.webhooks is webhooks
    assert reapi.WebhookVerificationError is webhooks.WebhookVerificationError


def test_a_signed_body_that_is_not_json_is_refused():
    with pytest.raises(WebhookVerificationError) as info:
        webhooks.verify("not json", signed("not json"), SPEC_SECRET)
    assert info.value.code == "webhook_invalid_body"
