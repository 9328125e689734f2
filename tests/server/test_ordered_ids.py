"""The ids of the rows every request inserts start with the time (`ids.ordered_id`): new rows go
to the end of their primary key's index instead of anywhere in it. Still unguessable."""

import asyncio
import re

from tests.server.helpers import auth

from reapi_server.ids import ordered_id
from reapi_server.mirror.keys import is_task_id
from reapi_server.mirror.outputs import _new_file_id
from reapi_server.observability.middleware import new_request_id


async def test_ordered_ids_sort_by_creation_and_keep_their_random_part():
    first = [ordered_id("x", 24) for _ in range(50)]
    await asyncio.sleep(0.002)
    later = ordered_id("x", 24)
    assert all(re.fullmatch(r"x_[0-9a-f]{35}", i) for i in first)
    assert all(i < later for i in first)
    assert len({i[13:] for i in first}) == 50  # the random part differs within a millisecond


def test_each_kind_keeps_a_shape_the_gateway_accepts():
    request_id = new_request_id()
    assert is_task_id(request_id) and len(request_id) <= 40  # usage_records.id
    assert re.fullmatch(r"file_[0-9a-f]{48}", _new_file_id())  # what /v1/files/{id} accepts
    assert len(ordered_id("hold", 24)) == 40  # credit_holds.id


async def test_a_gateways_ids_come_in_order(gateway):
    _, key = await gateway.account()
    seen = []
    for _ in range(3):
        response = await gateway.client.post(
            "/v1/images/generations",
            json={"prompt": "p", "response_format": "url"},
            headers=auth(key),
        )
        file_id = response.json()["data"][0]["url"].split("/")[-2]
        seen.append((response.headers["x-request-id"], file_id))
        await asyncio.sleep(0.002)
    assert [r for r, _ in seen] == sorted(r for r, _ in seen)
    assert [f for _, f in seen] == sorted(f for _, f in seen)
    assert (await gateway.client.get(f"/v1/files/{seen[0][1]}/content")).status_code == 200
