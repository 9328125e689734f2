"""Create a video, wait with a progress callback and download it, with the async client."""

import anyio

from reapi import AsyncReAPI
from reapi.catalog import Catalog, default_catalog
from reapi.testing import OpenAISimulator, SimServer


def catalog_with_video() -> Catalog:
    """The shipped catalog plus a video model served by the OpenAI Videos simulator."""
    data = default_catalog().model_dump(mode="json")
    data["models"]["sim-video"] = {
        "id": "sim-video",
        "kind": "video",
        "name": "Simulated video",
        "owned_by": "reapi",
        "capabilities": {
            "sizes": {"1280x720": {"aspect_ratio": "16:9", "resolution": "720p"}},
            "seconds": [4, 8, 12],
        },
        "price": {"unit": "second", "credits": 10},
        "routes": [{"provider": "openai", "upstream_model": "sora-2"}],
    }
    return Catalog.model_validate(data)


async def main() -> None:
    with SimServer(OpenAISimulator("sk-sim", polls_to_complete=3)) as sim:
        async with AsyncReAPI(
            catalog=catalog_with_video(),
            provider_keys={"openai": "sk-sim"},
            provider_base_urls={"openai": sim.base_url + "/v1"},
        ) as client:
            video = await client.videos.create(
                model="sim-video", prompt="waves at night", seconds=8, size="1280x720"
            )
            done = await client.videos.wait(
                video.id,
                poll_interval=0.1,
                on_progress=lambda v: print(f"  {v.status:<12} {v.progress:3d}%"),
            )
            content = await client.videos.download_content(done.id)
            print(f"{done.status}: {len(content.content)} bytes of MP4 from {done.reapi.provider}")


anyio.run(main)
