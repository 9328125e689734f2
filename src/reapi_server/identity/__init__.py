"""People and how they sign in: passwords (argon2id), server-side sessions, one-time mail
tokens, the sign-in throttle, and the use cases that combine them (`service.Identity`).
No HTTP here: the web half (`reapi_server.web`) calls these."""
