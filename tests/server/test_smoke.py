from tests.server.helpers import auth, ledger_matches


async def test_generate_image(gateway):
    account, key = await gateway.account(credits=1000)
    response = await gateway.client.post(
        "/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "a lighthouse"},
        headers=auth(key),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"][0]["b64_json"]
    assert await ledger_matches(gateway.rt, account) == (960, 0)
