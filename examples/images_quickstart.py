"""Generate and edit an image with GPT Image 2, against the built-in OpenAI simulator.

With a real key, drop the simulator and `provider_base_urls`: `ReAPI()` reads OPENAI_API_KEY.
"""

from reapi import ReAPI
from reapi.testing import OpenAISimulator, SimServer

with (
    SimServer(OpenAISimulator(api_key="sk-sim")) as sim,
    ReAPI(
        provider_keys={"openai": "sk-sim"}, provider_base_urls={"openai": sim.base_url + "/v1"}
    ) as client,
):
    image = client.images.generate(
        model="gpt-image-2", prompt="a lighthouse at dusk", size="1536x1024", quality="high"
    )
    png = image.data[0].content()
    print(f"{len(png)} bytes of PNG from {image.reapi.provider} in {image.reapi.attempts} attempt")

    edited = client.images.edit(model="gpt-image-2", prompt="add a full moon", image=png)
    print(f"edit: {len(edited.data[0].content())} bytes")
