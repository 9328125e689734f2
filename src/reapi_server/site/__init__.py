"""What the public pages show, computed from the running gateway: its models and their prices
(`models`), each route's health (`health`), the changelog (`changelog`). The web pages and the
admin pages render these; none of them keeps a copy of a price or a state."""
