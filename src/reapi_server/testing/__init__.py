"""Loopback test doubles of the outside services the gateway talks to (sign-in providers, mail,
bot checks), for tests and the demo. Never a fallback in production code."""
