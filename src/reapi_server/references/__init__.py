"""Inputs a request names instead of carrying (caller URLs, file ids), and their resolution."""
