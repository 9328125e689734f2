"""reapi gateway server."""
