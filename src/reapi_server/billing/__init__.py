"""Billing: what people pay for credit. Today the payment records (kept 7 years, detached from
deleted accounts); Stripe checkout and webhooks come with the billing issue."""
