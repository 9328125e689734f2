"""Credits: integer units, holds before upstream calls, a ledger that always adds up."""
