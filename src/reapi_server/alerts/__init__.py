"""Low-balance alerts: thresholds of an account's balance and, per key, a share of its spend
limit; one mail per crossing, whichever server process sees it. `settings` (what a person sets),
`watch` (each process's copy, compared on each hold's closing), `crossings` (the writes)."""
