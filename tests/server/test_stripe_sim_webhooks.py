"""Webhooks from the Stripe simulator to a real loopback receiver that verifies them with the
official `stripe.Webhook.construct_event`: signatures, retries until a 2xx, duplicates,
concurrent and out-of-order delivery, tampered deliveries, and the control API over HTTP."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator

import httpx
import pytest
import stripe
from tests.server.stripe_receiver import Receiver, stripe_receiver

from reapi_server.testing.stripe_sim import (
    StripeSimulator,
    Tamper,
    WebhookEndpoint,
    signature_header,
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with stripe_receiver() as endpoint:
        yield endpoint


@pytest.fixture
def sim(receiver: Receiver) -> Iterator[StripeSimulator]:
    endpoint = WebhookEndpoint(receiver.url, receiver.secret)
    with StripeSimulator(webhooks=[endpoint], retry_delays=(0.05, 0.1, 0.2)) as simulator:
        yield simulator


@pytest.fixture
def client(sim: StripeSimulator) -> stripe.StripeClient:
    return stripe.StripeClient(
        sim.secret_key, base_addresses={"api": sim.base_url}, max_network_retries=0
    )


def new_customer(client: stripe.StripeClient) -> str:
    return str(client.v1.customers.create(params={"email": "a@example.com"}).id)


def paid_charge(client: stripe.StripeClient, sim: StripeSimulator) -> str:
    """The charge of a completed purchase."""
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 2,
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 500,
                        "product_data": {"name": "credits"},
                    },
                }
            ],
            "success_url": "https://shop.example/ok",
        }
    )
    sim.complete_session(session.id)
    intent = client.v1.payment_intents.retrieve(
        client.v1.checkout.sessions.retrieve(session.id).payment_intent
    )
    return str(intent.latest_charge)


def test_signatures_follow_stripes_scheme(sim, client, receiver):
    customer_id = new_customer(client)
    sim.wait_idle()
    [delivery] = sim.deliveries()
    assert delivery.ok and delivery.event_type == "customer.created"
    [seen] = receiver.events
    timestamp, signature = seen.signature.split(",")
    assert timestamp == f"t={delivery.timestamp}"
    assert signature.startswith("v1=") and len(signature) == 3 + 64
    event = client.v1.events.retrieve(delivery.event_id)
    assert event.data.object.id == customer_id
    assert event.request.id and event.request.idempotency_key  # the SDK sends a key on POSTs
    payload = b'{"id": "evt_1"}'
    expected = hmac.new(b"whsec_k", b"1700000000." + payload, hashlib.sha256).hexdigest()
    assert signature_header(payload, ["whsec_k"], 1_700_000_000) == f"t=1700000000,v1={expected}"


def test_failed_deliveries_are_retried_until_a_2xx(sim, client, receiver):
    receiver.fail_next = 2
    new_customer(client)
    sim.wait_idle()
    deliveries = sim.deliveries()
    assert [(d.attempt, d.kind, d.status) for d in deliveries] == [
        (1, "automatic", 500),
        (2, "retry", 500),
        (3, "retry", 200),
    ]
    assert client.v1.events.retrieve(deliveries[0].event_id).pending_webhooks == 0
    assert len({r.event_id for r in receiver.events}) == 1


def test_retries_stop_when_the_schedule_runs_out(sim, client, receiver):
    receiver.always = 503
    new_customer(client)
    sim.wait_idle()
    assert [d.status for d in sim.deliveries()] == [503] * 4  # first try and three retries
    event_id = sim.deliveries()[0].event_id
    assert client.v1.events.retrieve(event_id).pending_webhooks == 1


def test_an_unreachable_endpoint_is_retried_as_a_connection_error(receiver):
    with StripeSimulator(retry_delays=(0.05,)) as sim:
        sim.add_webhook_endpoint("http://127.0.0.1:9/hook", "whsec_x")  # discard: refused
        sim.add_webhook_endpoint(receiver.url, receiver.secret, enabled_events=["charge.refunded"])
        client = stripe.StripeClient(
            sim.secret_key, base_addresses={"api": sim.base_url}, max_network_retries=0
        )
        new_customer(client)
        sim.wait_idle()
        deliveries = sim.deliveries()
        assert [d.attempt for d in deliveries] == [1, 2]
        assert all(d.status is None and d.error for d in deliveries)
        assert receiver.received == []  # not subscribed to customer.created


def test_a_resent_event_and_concurrent_duplicates_carry_the_same_id(sim, client, receiver):
    new_customer(client)
    sim.wait_idle()
    event_id = sim.deliveries()[0].event_id
    [resent] = sim.resend(event_id)
    assert resent.wait().ok and resent.kind == "resend"
    receiver.delay = 0.3
    copies = sim.deliver_concurrently(event_id, copies=2)
    assert all(d.wait().ok for d in copies)
    assert receiver.max_in_flight == 2
    assert [r.event_id for r in receiver.events] == [event_id] * 4


def test_held_events_are_delivered_in_the_chosen_order(sim, client, receiver):
    sim.hold_events()
    charge_id = paid_charge(client, sim)
    client.v1.refunds.create(params={"charge": charge_id, "amount": 400})
    assert receiver.received == []
    completed = sim.last_event("checkout.session.completed")["id"]
    refunded = sim.last_event("charge.refunded")["id"]
    assert {completed, refunded} <= set(sim.held_events())
    # the event still reads back while held: a receiver can re-fetch
    assert client.v1.events.retrieve(refunded).data.object.amount_refunded == 400

    deliveries = sim.release_events([refunded, completed])
    assert [d.kind for d in deliveries] == ["released", "released"]
    for delivery in deliveries:
        delivery.wait()
    assert [r.event_id for r in receiver.events] == [refunded, completed]
    assert completed not in sim.held_events()

    sim.hold_events(False)
    rest = sim.release_events()
    assert len(rest) >= 3  # payment intent, charge, refund events, oldest first
    sim.wait_idle()
    assert sim.held_events() == []
    client.v1.customers.create(params={})  # no longer held
    sim.wait_idle()
    assert receiver.types()[-1] == "customer.created"


@pytest.mark.parametrize("tamper", list(Tamper))
def test_tampered_deliveries_fail_verification(sim, client, receiver, tamper):
    new_customer(client)
    sim.wait_idle()
    event_id = sim.deliveries()[0].event_id
    [delivery] = sim.send_tampered(event_id, tamper)
    assert delivery.wait().status == 400 and delivery.kind == f"tampered:{tamper.value}"
    rejected = receiver.received[-1]
    assert not rejected.verified
    if tamper is Tamper.BODY:
        assert rejected.event_id != event_id and len(rejected.event_id) == len(event_id)


def test_a_rolled_secret_signs_with_both_until_the_old_one_is_dropped(sim, client, receiver):
    [endpoint] = sim.webhook_endpoints
    old = endpoint.secret
    sim.roll_webhook_secret(endpoint.id, "whsec_new")
    new_customer(client)
    sim.wait_idle()
    assert receiver.events[-1].signature.count("v1=") == 2  # the receiver still has the old one
    receiver.secret = "whsec_new"
    new_customer(client)
    sim.wait_idle()
    assert receiver.received[-1].verified
    sim.roll_webhook_secret(endpoint.id, "whsec_newer", keep_old=False)
    receiver.secret = old
    new_customer(client)
    sim.wait_idle()
    assert not receiver.received[-1].verified


def test_a_clock_moved_back_makes_stale_signatures(sim, client, receiver):
    sim.advance_clock(-600)
    new_customer(client)
    sim.wait_idle()
    assert receiver.received[-1].verified is False
    assert "tolerance" in (receiver.received[-1].error or "")
    assert sim.deliveries()[0].timestamp <= time.time() - 590


def test_the_control_api_over_http(sim, client, receiver):
    control = sim.base_url + "/__sim__/stripe"
    state = httpx.get(control + "/state").json()
    assert state["secret_key"] == sim.secret_key and state["holding"] is False
    assert httpx.get(sim.base_url + "/__sim__/health").json()["ok"] is True
    assert httpx.get(control + "/nothing").status_code == 404

    with stripe_receiver("whsec_second") as second:
        added = httpx.post(
            control + "/webhook_endpoints",
            json={"url": second.url, "secret": "whsec_second", "enabled_events": ["*"]},
        ).json()
        assert added["secret"] == "whsec_second"
        assert httpx.post(control + "/hold", json={"hold": True}).json()["holding"] is True
        session = client.v1.checkout.sessions.create(
            params={
                "mode": "payment",
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": "eur",
                            "unit_amount": 700,
                            "product_data": {"name": "pack"},
                        },
                    }
                ],
            }
        )
        completed = httpx.post(control + f"/checkout_sessions/{session.id}/complete", json={})
        assert completed.json()["payment_status"] == "paid"
        held = httpx.get(control + "/held").json()
        event_id = next(e["id"] for e in sim.events("checkout.session.completed"))
        assert event_id in held
        released = httpx.post(control + "/release", json={"events": [event_id]}).json()
        assert {d["url"] for d in released} == {receiver.url, second.url}
        sim.wait_idle()
        listed = httpx.get(control + f"/events/{event_id}/deliveries").json()
        assert {(d["status"], d["kind"]) for d in listed} == {(200, "released")}
        resent = httpx.post(control + f"/events/{event_id}/resend", json={}).json()
        assert len(resent) == 2
        tampered = httpx.post(
            control + f"/events/{event_id}/send_tampered", json={"tamper": "wrong_secret"}
        )
        assert tampered.status_code == 200
        sim.wait_idle()
        # The release and the resend verify, the tampered copy does not; the resend is delivered
        # in the background, so it may arrive after the tampered copy sent at once.
        assert sorted(r.verified for r in second.received) == [False, True, True]
        removed = httpx.delete(control + f"/webhook_endpoints/{added['id']}")
        assert removed.json()["deleted"] is True

    bad = httpx.post(control + "/events/evt_nope/resend", json={})
    assert bad.status_code == 404
    assert httpx.post(control + "/disputes", json={}).status_code == 400
    advanced = httpx.post(control + "/clock/advance", json={"seconds": 60}).json()
    assert advanced["offset"] == 60
    all_deliveries = httpx.get(control + "/deliveries").json()
    assert all(d["done"] for d in all_deliveries)
