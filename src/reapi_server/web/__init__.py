"""The browser surface: server-rendered pages in a sub-application mounted beside the API,
built by its first request. See `web.mount` for where it sits, `web.app` for what it is."""
