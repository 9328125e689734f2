"""Stopping a SimServer while clients still hold keep-alive connections is quiet."""

import logging

import httpx

from reapi.testing import SimServer, json_answer


class OkApp:
    def handle(self, method, path, query, headers, body, *, origin):
        return json_answer(200, {"ok": True})


def test_stopping_with_an_idle_keep_alive_connection_logs_no_error(caplog):
    server = SimServer(OkApp()).start()
    with httpx.Client() as client:
        assert client.get(server.base_url + "/x").status_code == 200
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            server.stop()  # the client's connection is still open
    assert not [r for r in caplog.records if r.name == "asyncio"], caplog.text
