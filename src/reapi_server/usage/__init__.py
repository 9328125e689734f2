"""Usage rows: one per create request, metadata only."""
