"""`Idempotency-Key` on create calls: one upstream call, one charge, the same answer."""
