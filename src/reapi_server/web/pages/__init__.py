"""The web half's pages, one module per area. Pages call services (identity, accounts), never
repositories; each module's `router` is included by `web.app`."""
