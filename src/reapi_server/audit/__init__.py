"""The audit log: what operators did, by whom, when, to which account or person. Every admin
action (web pages or command line) writes one row in the transaction that does it."""

from .actor import Actor
from .repository import record

__all__ = ["Actor", "record"]
