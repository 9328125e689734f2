"""The browser surface: server-rendered pages in a sub-application mounted beside the API.
See `web.app` for how it is kept away from /v1."""

from .app import create_web_app, mount_web

__all__ = ["create_web_app", "mount_web"]
