"""Accounts: the wallets that own credit, keys, jobs, outputs and usage, and the memberships
through which people (`identity`) reach them."""
