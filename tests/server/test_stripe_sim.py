"""The Stripe simulator driven by the official `stripe` package, end to end on loopback: the
checkout a person pays on the hosted page, idempotency, refunds, disputes, off-session
payments, errors in Stripe's shape, and the standalone command."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
import stripe
from tests.server.stripe_receiver import Receiver, stripe_receiver

from reapi.testing import Fault
from reapi_server.testing.stripe_sim import StripeError, StripeSimulator, WebhookEndpoint
from reapi_server.testing.stripe_sim._forms import decode_form


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with stripe_receiver() as endpoint:
        yield endpoint


@pytest.fixture
def sim(receiver: Receiver) -> Iterator[StripeSimulator]:
    endpoint = WebhookEndpoint(receiver.url, receiver.secret)
    with StripeSimulator(webhooks=[endpoint], retry_delays=(0.05, 0.1)) as simulator:
        yield simulator


@pytest.fixture
def client(sim: StripeSimulator) -> stripe.StripeClient:
    return stripe.StripeClient(
        sim.secret_key, base_addresses={"api": sim.base_url}, max_network_retries=0
    )


def session_params(**overrides: object) -> dict[str, object]:
    """A credit pack purchase as the billing issue describes it."""
    params: dict[str, object] = {
        "mode": "payment",
        "client_reference_id": "tu_1",
        "metadata": {"top_up_id": "tu_1"},
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 1000,
                    "product_data": {"name": "1,000 credits"},
                },
            }
        ],
        "payment_intent_data": {
            "metadata": {"top_up_id": "tu_1"},
            "setup_future_usage": "off_session",
        },
        "invoice_creation": {"enabled": True, "invoice_data": {"metadata": {"top_up_id": "tu_1"}}},
        "automatic_tax": {"enabled": True},
        "tax_id_collection": {"enabled": True},
        "success_url": "https://shop.example/billing/success?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://shop.example/billing/cancel?session={CHECKOUT_SESSION_ID}",
    }
    params.update(overrides)
    return params


def paid_session(client: stripe.StripeClient, sim: StripeSimulator, **overrides: object):
    customer = client.v1.customers.create(params={"email": "ada@example.com"})
    session = client.v1.checkout.sessions.create(
        params=session_params(customer=customer.id, **overrides)
    )
    sim.complete_session(session.id)
    return client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent", "invoice"]}
    )


# -- checkout through the hosted page -----------------------------------------------------------
def test_a_purchase_on_the_hosted_page_end_to_end(sim, client, receiver):
    customer = client.v1.customers.create(
        params={"email": "ada@example.com", "metadata": {"account_id": "acct_1"}}
    )
    session = client.v1.checkout.sessions.create(
        params=session_params(customer=customer.id), options={"idempotency_key": "buy-tu_1"}
    )
    assert session.status == "open" and session.payment_status == "unpaid"
    assert session.amount_total == 1000 and session.currency == "eur"
    assert session.url.startswith(sim.base_url + "/c/pay/")

    page = httpx.get(session.url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "€10.00" in page.text and "1,000 credits" in page.text
    assert 'value="pay"' in page.text and 'value="decline"' in page.text
    assert "<script" not in page.text and 'name="viewport"' in page.text

    paid = httpx.post(session.url, data={"action": "pay", "email": "ada@example.com"})
    assert paid.status_code == 303
    assert paid.headers["location"] == (
        f"https://shop.example/billing/success?session={session.id}"
    )

    done = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent.latest_charge", "invoice", "line_items"]}
    )
    assert (done.status, done.payment_status) == ("complete", "paid")
    assert done.client_reference_id == "tu_1" and done.metadata["top_up_id"] == "tu_1"
    assert done.line_items.data[0].description == "1,000 credits"
    intent = done.payment_intent
    assert intent.status == "succeeded" and intent.metadata["top_up_id"] == "tu_1"
    assert intent.customer == customer.id and intent.setup_future_usage == "off_session"
    assert intent.latest_charge.amount == 1000 and intent.latest_charge.paid
    saved = client.v1.customers.payment_methods.list(customer.id)
    assert [m.id for m in saved.data] == [intent.payment_method]
    invoice = done.invoice
    assert invoice.status == "paid" and invoice.amount_paid == 1000
    assert invoice.metadata["top_up_id"] == "tu_1" and invoice.customer == customer.id

    sim.wait_idle()
    types = receiver.types()
    for wanted in (
        "checkout.session.completed",
        "payment_intent.succeeded",
        "charge.succeeded",
        "payment_method.attached",
        "invoice.finalized",
        "invoice.paid",
    ):
        assert wanted in types
    completed = sim.last_event("checkout.session.completed")
    assert completed["data"]["object"]["id"] == session.id
    assert completed["data"]["object"]["invoice"] == invoice.id
    assert completed["object"] == "event" and completed["livemode"] is False
    assert completed["api_version"] == stripe.api_version
    assert completed["pending_webhooks"] == 0 and "request" in completed
    assert client.v1.events.retrieve(completed["id"]).type == "checkout.session.completed"


def test_the_invoice_has_a_hosted_page_and_a_real_pdf(sim, client):
    invoice = paid_session(client, sim).invoice
    page = httpx.get(invoice.hosted_invoice_url)
    assert page.status_code == 200 and invoice.number in page.text
    pdf = httpx.get(invoice.invoice_pdf)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    body = pdf.content
    assert body.startswith(b"%PDF-1.4") and body.rstrip().endswith(b"%%EOF")
    xref = int(re.search(rb"startxref\s+(\d+)", body).group(1))
    assert body[xref:].startswith(b"xref")
    assert invoice.number.encode() in body and b"10.00" in body
    receipt = httpx.get(invoice_charge(client, invoice).receipt_url)
    assert receipt.status_code == 200 and "Receipt" in receipt.text


def invoice_charge(client, invoice):
    payment = client.v1.invoice_payments.list(params={"invoice": invoice.id}).data[0]
    intent = client.v1.payment_intents.retrieve(payment.payment.payment_intent)
    return client.v1.charges.retrieve(intent.latest_charge)


def test_decline_returns_to_the_cancel_url_and_a_later_pay_reuses_the_intent(sim, client):
    session = client.v1.checkout.sessions.create(params=session_params())
    declined = httpx.post(session.url, data={"action": "decline"})
    assert declined.status_code == 303
    assert declined.headers["location"].endswith(f"cancel?session={session.id}")
    still = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert still.status == "open"
    assert still.payment_intent.status == "requires_payment_method"
    assert still.payment_intent.last_payment_error.code == "card_declined"
    assert sim.last_event("payment_intent.payment_failed")

    httpx.post(session.url, data={"action": "pay", "email": "bob@example.com"})
    paid = client.v1.checkout.sessions.retrieve(session.id)
    assert paid.payment_status == "paid" and paid.payment_intent == still.payment_intent.id
    assert paid.customer_details.email == "bob@example.com"
    assert paid.customer  # created: the card is saved and an invoice issued


def test_a_delayed_payment_completes_unpaid_then_succeeds_or_fails(sim, client):
    params = session_params(payment_method_types=["card", "sepa_debit"])
    first = client.v1.checkout.sessions.create(params=params)
    assert "bank debit" in httpx.get(first.url).text
    httpx.post(first.url, data={"action": "pay_later", "email": "a@example.com"})
    pending = client.v1.checkout.sessions.retrieve(first.id)
    assert (pending.status, pending.payment_status, pending.invoice) == ("complete", "unpaid", None)
    sim.settle_session(first.id, succeeded=True)
    settled = client.v1.checkout.sessions.retrieve(first.id)
    assert settled.payment_status == "paid" and settled.invoice
    assert sim.last_event("checkout.session.async_payment_succeeded")

    second = client.v1.checkout.sessions.create(params=params)
    sim.complete_session(second.id, pay_later=True)
    sim.settle_session(second.id, succeeded=False)
    failed = client.v1.checkout.sessions.retrieve(second.id, params={"expand": ["payment_intent"]})
    assert failed.payment_status == "unpaid"
    assert failed.payment_intent.status == "requires_payment_method"
    assert sim.last_event("checkout.session.async_payment_failed")["data"]["object"]["id"] == (
        second.id
    )


def test_sessions_expire_by_the_api_and_by_the_clock(sim, client):
    first = client.v1.checkout.sessions.create(params=session_params())
    assert client.v1.checkout.sessions.expire(first.id).status == "expired"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(first.id)
    assert httpx.get(first.url).status_code == 410

    second = client.v1.checkout.sessions.create(params=session_params())
    sim.advance_clock(24 * 3600 + 1)
    assert client.v1.checkout.sessions.retrieve(second.id).status == "expired"
    expired = [e["data"]["object"]["id"] for e in sim.events("checkout.session.expired")]
    assert expired == [first.id, second.id]
    listed = client.v1.checkout.sessions.list(params={"status": "expired"})
    assert {s.id for s in listed.data} == {first.id, second.id}


def test_a_customer_is_created_when_the_session_needs_one(sim, client):
    session = client.v1.checkout.sessions.create(
        params=session_params(customer_email="new@example.com")
    )
    sim.complete_session(session.id)
    done = client.v1.checkout.sessions.retrieve(session.id)
    customer = client.v1.customers.retrieve(done.customer)
    assert customer.email == "new@example.com"
    plain = client.v1.checkout.sessions.create(
        params=session_params(payment_intent_data={}, invoice_creation={"enabled": False})
    )
    sim.complete_session(plain.id)
    assert client.v1.checkout.sessions.retrieve(plain.id).customer is None


# -- idempotency --------------------------------------------------------------------------------
def test_an_idempotency_key_replays_the_first_answer(sim, client):
    params = session_params()
    first = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "k-1"})
    again = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "k-1"})
    assert again.id == first.id
    assert len(client.v1.checkout.sessions.list().data) == 1

    headers = {"authorization": f"Bearer {sim.secret_key}", "idempotency-key": "k-2"}
    form = {"email": "x@example.com", "metadata[account]": "a1"}
    one = httpx.post(sim.base_url + "/v1/customers", data=form, headers=headers)
    two = httpx.post(sim.base_url + "/v1/customers", data=form, headers=headers)
    assert one.json()["id"] == two.json()["id"]
    assert "idempotent-replayed" not in one.headers
    assert two.headers["idempotent-replayed"] == "true"

    with pytest.raises(stripe.IdempotencyError, match="same parameters"):
        client.v1.checkout.sessions.create(
            params=session_params(client_reference_id="tu_2"), options={"idempotency_key": "k-1"}
        )
    with pytest.raises(stripe.IdempotencyError, match="same endpoint"):
        client.v1.customers.create(params={}, options={"idempotency_key": "k-1"})


def test_a_card_error_is_replayed_too(sim, client):
    session = paid_session(client, sim)
    intent = session.payment_intent
    params = {
        "amount": 500,
        "currency": "eur",
        "customer": intent.customer,
        "payment_method": intent.payment_method,
        "off_session": True,
        "confirm": True,
    }
    sim.queue_off_session_outcome("card_declined")
    for _ in range(2):
        with pytest.raises(stripe.CardError) as caught:
            client.v1.payment_intents.create(params=params, options={"idempotency_key": "top-1"})
    assert caught.value.code == "card_declined"
    assert len(sim.objects("payment_intent", customer=intent.customer)) == 2  # one new, not two


# -- refunds and disputes -----------------------------------------------------------------------
def test_partial_refunds_add_up_on_the_charge(sim, client, receiver):
    intent = paid_session(client, sim).payment_intent
    charge_id = intent.latest_charge
    client.v1.refunds.create(params={"charge": charge_id, "amount": 300})
    client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 200})
    charge = client.v1.charges.retrieve(charge_id)
    assert (charge.amount_refunded, charge.refunded) == (500, False)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create(params={"charge": charge_id, "amount": 600})
    assert caught.value.code == "amount_too_large"
    rest = client.v1.refunds.create(params={"charge": charge_id})
    assert rest.amount == 500
    charge = client.v1.charges.retrieve(charge_id)
    assert (charge.amount_refunded, charge.refunded) == (1000, True)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create(params={"charge": charge_id, "amount": 1})
    assert caught.value.code == "charge_already_refunded"

    refunded = [e["data"]["object"]["amount_refunded"] for e in sim.events("charge.refunded")]
    assert refunded == [300, 500, 1000]
    listed = client.v1.refunds.list(params={"charge": charge_id})
    assert sorted(r.amount for r in listed.data) == [200, 300, 500]
    assert client.v1.refunds.retrieve(rest.id).status == "succeeded"


def test_disputes_open_and_close_won_or_lost(sim, client):
    won_charge = paid_session(client, sim).payment_intent.latest_charge
    control = sim.base_url + "/__sim__/stripe"
    opened = httpx.post(control + "/disputes", json={"charge": won_charge, "amount": 600}).json()
    assert (opened["amount"], opened["status"]) == (600, "needs_response")
    assert client.v1.charges.retrieve(won_charge).disputed is True
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create(params={"charge": won_charge})
    assert caught.value.code == "charge_disputed"
    created = sim.last_event("charge.dispute.created")["data"]["object"]
    assert created["id"] == opened["id"] and created["charge"] == won_charge
    closed = httpx.post(control + f"/disputes/{opened['id']}/close", json={"outcome": "won"})
    assert closed.json()["status"] == "won"
    assert client.v1.disputes.retrieve(opened["id"]).status == "won"
    assert sim.last_event("charge.dispute.closed")["data"]["object"]["status"] == "won"
    assert sim.last_event("charge.dispute.funds_reinstated")

    lost_charge = paid_session(client, sim).payment_intent.latest_charge
    dispute = sim.open_dispute(lost_charge)
    assert dispute["amount"] == 1000
    assert client.v1.disputes.close(dispute["id"]).status == "lost"  # accepting it
    assert sim.last_event("charge.dispute.closed")["data"]["object"]["status"] == "lost"
    listed = client.v1.disputes.list(params={"charge": lost_charge})
    assert [d.id for d in listed.data] == [dispute["id"]]
    with pytest.raises(StripeError, match="already closed"):
        sim.close_dispute(dispute["id"], "won")


# -- off-session payments (auto top-up) ---------------------------------------------------------
def off_session(client, intent, **extra):
    params = {
        "amount": 2000,
        "currency": "eur",
        "customer": intent.customer,
        "payment_method": intent.payment_method,
        "off_session": True,
        "confirm": True,
        "metadata": {"auto_top_up": "at_1"},
    }
    params.update(extra)
    return client.v1.payment_intents.create(params=params)


def test_off_session_payments_succeed_or_need_authentication_or_are_declined(sim, client):
    intent = paid_session(client, sim).payment_intent
    ok = off_session(client, intent)
    assert ok.status == "succeeded" and ok.metadata["auto_top_up"] == "at_1"
    assert client.v1.charges.retrieve(ok.latest_charge).amount == 2000
    assert sim.last_event("payment_intent.succeeded")["data"]["object"]["id"] == ok.id

    sim.queue_off_session_outcome("authentication_required")
    with pytest.raises(stripe.CardError) as caught:
        off_session(client, intent)
    assert caught.value.http_status == 402 and caught.value.code == "authentication_required"
    failed_id = caught.value.error.payment_intent.id
    failed = client.v1.payment_intents.retrieve(failed_id)
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error.code == "authentication_required"
    event = sim.last_event("payment_intent.payment_failed")["data"]["object"]
    assert event["id"] == failed_id and event["metadata"]["auto_top_up"] == "at_1"

    control = sim.base_url + "/__sim__/stripe/off_session_outcomes"
    assert httpx.post(control, json={"outcome": "card_declined"}).json() == ["card_declined"]
    with pytest.raises(stripe.CardError) as caught:
        off_session(client, intent)
    assert caught.value.code == "card_declined"
    assert caught.value.error.decline_code == "generic_decline"
    assert off_session(client, intent).status == "succeeded"  # the queue is empty again


def test_a_saved_bank_debit_charged_off_session_is_processing_until_settled(sim, client):
    """As Stripe's delayed-notification methods (SEPA Debit, ACH): an off-session charge is
    `processing` with a pending charge, then succeeds or fails (`requires_payment_method`)."""
    session = client.v1.checkout.sessions.create(
        params=session_params(payment_method_types=["sepa_debit"])
    )
    sim.complete_session(session.id, pay_later=True)
    sim.settle_session(session.id, succeeded=True)
    intent = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent"]}
    ).payment_intent
    assert client.v1.payment_methods.retrieve(intent.payment_method).type == "sepa_debit"
    first = off_session(client, intent)
    assert (first.status, first.amount_received) == ("processing", 0)
    assert client.v1.charges.retrieve(first.latest_charge).status == "pending"
    assert sim.last_event("payment_intent.processing")["data"]["object"]["id"] == first.id
    settled = sim.settle_payment_intent(first.id, succeeded=True)
    assert (settled["status"], settled["amount_received"]) == ("succeeded", 2000)
    assert sim.last_event("payment_intent.succeeded")["data"]["object"]["id"] == first.id
    with pytest.raises(StripeError):
        sim.settle_payment_intent(first.id, succeeded=False)  # nothing waits to settle

    second = off_session(client, intent)
    control = f"{sim.base_url}/__sim__/stripe/payment_intents/{second.id}/settle"
    assert httpx.post(control, json={}).status_code == 400
    failed = httpx.post(control, json={"succeeded": False}).json()
    assert failed["status"] == "requires_payment_method"
    assert failed["last_payment_error"]["code"] == "payment_method_provider_decline"
    assert sim.last_event("payment_intent.payment_failed")["data"]["object"]["id"] == second.id

    sim.queue_off_session_outcome("processing")  # a card can be made to wait too
    card = paid_session(client, sim).payment_intent
    assert off_session(client, card).status == "processing"


def test_automatic_tax_adds_the_simulators_rate_on_top(sim, client):
    control = f"{sim.base_url}/__sim__/stripe/tax"
    assert httpx.post(control, json={"percent": 19}).json() == {"percent": 19.0}
    taxed = paid_session(client, sim)  # 10.00 EUR, automatic_tax on
    assert (taxed.amount_subtotal, taxed.amount_total) == (1000, 1190)
    assert taxed.total_details.amount_tax == 190 and taxed.automatic_tax.status == "complete"
    assert (taxed.payment_intent.amount, taxed.payment_intent.amount_received) == (1190, 1190)
    assert (taxed.invoice.total, taxed.invoice.total_excluding_tax) == (1190, 1000)
    untaxed = paid_session(client, sim, automatic_tax={"enabled": False})
    assert (untaxed.amount_subtotal, untaxed.amount_total) == (1000, 1000)
    assert httpx.get(f"{sim.base_url}/__sim__/stripe/state").json()["tax_percent"] == 19.0


def test_a_detached_payment_method_is_never_charged_again(sim, client):
    intent = paid_session(client, sim).payment_intent
    client.v1.payment_methods.detach(intent.payment_method)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        off_session(client, intent)
    assert caught.value.http_status == 400 and caught.value.param == "payment_method"


def test_a_card_that_needs_authentication_later_is_chosen_on_the_page(sim, client):
    session = client.v1.checkout.sessions.create(params=session_params())
    httpx.post(session.url, data={"action": "pay", "email": "a@example.com", "card": "3184"})
    intent = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent"]}
    ).payment_intent
    assert intent.status == "succeeded"  # paid at checkout, where the person is present
    with pytest.raises(stripe.CardError) as caught:
        off_session(client, intent)
    assert caught.value.code == "authentication_required"
    on_session = off_session(client, intent, off_session=None)
    assert on_session.status == "requires_action"


def test_a_saved_card_can_be_the_customers_default_until_detached(sim, client):
    intent = paid_session(client, sim).payment_intent
    settings = {"invoice_settings": {"default_payment_method": intent.payment_method}}
    updated = client.v1.customers.update(intent.customer, params=settings)
    assert updated.invoice_settings.default_payment_method == intent.payment_method
    previous = sim.last_event("customer.updated")["data"]["previous_attributes"]
    assert previous["invoice_settings"]["default_payment_method"] is None
    other = client.v1.customers.create(params={})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.customers.update(other.id, params=settings)
    assert caught.value.param == "invoice_settings[default_payment_method]"
    assert client.v1.payment_methods.detach(intent.payment_method).customer is None
    customer = client.v1.customers.retrieve(intent.customer)
    assert customer.invoice_settings.default_payment_method is None
    assert sim.last_event("payment_method.detached")


def test_the_global_stripe_configuration_works_too(sim, monkeypatch):
    monkeypatch.setattr(stripe, "api_key", sim.secret_key)
    monkeypatch.setattr(stripe, "api_base", sim.base_url)
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    customer = stripe.Customer.create(email="global@example.com", name="Ada")
    assert stripe.Customer.retrieve(customer.id).name == "Ada"
    updated = stripe.Customer.modify(customer.id, metadata={"k": "v"}, name="Ada L.")
    assert (updated.name, updated.metadata["k"]) == ("Ada L.", "v")


# -- errors -------------------------------------------------------------------------------------
def test_errors_are_in_stripe_shape(sim, client):
    wrong = stripe.StripeClient(
        "sk_test_wrong_key_1234", base_addresses={"api": sim.base_url}, max_network_retries=0
    )
    with pytest.raises(stripe.AuthenticationError):
        wrong.v1.customers.list()
    answer = httpx.get(sim.base_url + "/v1/customers", headers={"authorization": "Bearer nope"})
    assert answer.status_code == 401 and answer.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(sim.base_url + "/v1/customers").status_code == 401

    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.create(params=session_params(line_items=None))
    assert (caught.value.code, caught.value.param) == ("parameter_missing", "line_items")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.create(params=session_params(clinet_reference_id="typo"))
    assert (caught.value.code, caught.value.param) == ("parameter_unknown", "clinet_reference_id")
    item = {"quantity": 1, "price_data": {"currency": "eur", "product_data": {"name": "x"}}}
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.create(params=session_params(line_items=[item]))
    assert caught.value.param == "line_items[0][price_data][unit_amount]"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.customers.retrieve("cus_missing")
    assert (caught.value.http_status, caught.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.create(params=session_params(customer="cus_x"))
    assert caught.value.param == "customer"

    unknown = httpx.get(
        sim.base_url + "/v1/nothing", headers={"authorization": f"Bearer {sim.secret_key}"}
    )
    assert unknown.status_code == 404 and "Unrecognized request URL" in unknown.text


def test_server_faults_answer_in_stripe_shape(sim, client):
    sim.server.faults.set(Fault.ERROR_500, count=1)
    with pytest.raises(stripe.APIError):
        client.v1.customers.list()
    assert client.v1.customers.list().data == []


def test_form_bodies_decode_with_brackets():
    decoded = decode_form(
        "metadata[0]=zero&metadata[top_up_id]=t1&line_items[0][price_data][unit_amount]=5"
        "&line_items[1][quantity]=2&expand[]=invoice&expand[]=payment_intent&empty="
    )
    assert decoded == {
        "metadata": {"0": "zero", "top_up_id": "t1"},
        "line_items": [{"price_data": {"unit_amount": "5"}}, {"quantity": "2"}],
        "expand": ["invoice", "payment_intent"],
        "empty": "",
    }


# -- the standalone command ---------------------------------------------------------------------
def test_the_module_runs_standalone_and_delivers_to_its_webhook():
    with stripe_receiver("whsec_cli") as receiver:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reapi_server.testing.stripe_sim",
                "--webhook",
                receiver.url,
                "--webhook-secret",
                "whsec_cli",
                "--retry-delays",
                "0.05",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            line = process.stdout.readline()
            match = re.match(r"stripe simulator: (\S+) key=(\S+)", line)
            assert match, line
            client = stripe.StripeClient(
                match[2], base_addresses={"api": match[1]}, max_network_retries=0
            )
            customer = client.v1.customers.create(params={"email": "cli@example.com"})
            received = receiver.wait_for(1)
            assert received[0].verified and received[0].event_type == "customer.created"
            assert client.v1.customers.retrieve(customer.id).email == "cli@example.com"
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(10) == 0
