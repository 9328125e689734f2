"""Moved to `reapi_server.identity.user_agents` (the new-device mail names the browser too);
kept here so that pages importing it from the web half keep working."""

from ..identity.user_agents import describe

__all__ = ["describe"]
