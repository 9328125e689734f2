"""Low-balance alerts: thresholds of an account's balance and, per key, a share of its spend
limit; one mail per crossing, whichever server process sees it (`watch`, `service`)."""
