"""Per-key limits: requests per minute (in memory) and concurrent video jobs (in the database)."""
