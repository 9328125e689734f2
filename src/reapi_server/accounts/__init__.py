"""Accounts: who owns credit, keys, jobs, outputs and usage."""
