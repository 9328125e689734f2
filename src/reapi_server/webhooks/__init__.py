"""Webhooks for video jobs: when a job ends (completed or failed), its video object is POSTed,
signed per the Standard Webhooks specification, to the URL its request named (or its key's
default). Delivery goes through an outbox (`models.WebhookDelivery`) written with the final
state, sent by a background loop in every process (`sender`), retried with backoff for a day."""
