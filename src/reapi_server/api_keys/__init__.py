"""API keys: format, issuing, revoking and authenticating bearer tokens."""
