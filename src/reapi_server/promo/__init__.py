"""Promotion codes: operators create them (admin pages, `reapi-server promo`), people redeem
them on the billing page for credit (ledger kind `promo`)."""
