"""`reapi`: the catalog, and image or video generation from the terminal."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ._client import ReAPI
from ._exceptions import ReapiError
from .catalog import Catalog, ModelSpec, load_catalog
from .types import Video

# Locals off explicitly (typer before 0.23 showed them): a crash would print the prompt.
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help=__doc__,
    pretty_exceptions_show_locals=False,
)
console = Console(stderr=True)

CatalogOption = Annotated[
    Path | None, typer.Option(help="Overlay this catalog file (TOML or JSON) on the built-in one.")
]
ProviderUrlOption = Annotated[
    list[str] | None,
    typer.Option("--provider-url", help="Override a provider's base URL: NAME=URL (repeatable)."),
]
BaseUrlOption = Annotated[
    str | None,
    typer.Option(envvar="REAPI_BASE_URL", help="Use a reapi gateway instead of provider keys."),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(envvar="REAPI_API_KEY", help="The gateway API key.", show_default=False),
]


def _model_row(model: ModelSpec) -> dict[str, Any]:
    caps = model.capabilities.model_dump(exclude_defaults=True)
    return {
        "id": model.id,
        "kind": model.kind,
        "name": model.name,
        "owned_by": model.owned_by,
        "price": model.price.model_dump(exclude_defaults=True),
        "capabilities": caps,
        "routes": [
            {
                "provider": r.provider,
                "upstream_model": r.upstream_model,
                **({"limits": r.limits.model_dump(exclude_defaults=True)} if r.limits else {}),
            }
            for r in model.routes
        ],
    }


def catalog_as_json(catalog: Catalog) -> list[dict[str, Any]]:
    return [_model_row(m) for m in catalog.models.values()]


@app.command()
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    catalog: CatalogOption = None,
) -> None:
    """List the catalog: every public model with its routes, capabilities and price."""
    loaded = load_catalog(catalog)
    if as_json:
        typer.echo(json.dumps(catalog_as_json(loaded), indent=2))
        return
    table = Table("model", "kind", "routes (in order)", "price")
    for model in loaded.models.values():
        price = f"{model.price.credits} credits / {model.price.unit}"
        table.add_row(model.id, model.kind, " → ".join(r.key for r in model.routes), price)
    Console().print(table)


def _client(
    catalog: Path | None,
    provider_url: list[str] | None,
    base_url: str | None,
    api_key: str | None,
) -> ReAPI:
    urls = {}
    for item in provider_url or []:
        name, sep, url = item.partition("=")
        if not sep:
            raise typer.BadParameter("use NAME=URL", param_hint="--provider-url")
        urls[name] = url
    return ReAPI(base_url=base_url, api_key=api_key, catalog=catalog, provider_base_urls=urls)


def _fail(error: ReapiError) -> None:
    console.print(f"[red]error:[/red] {error}")
    raise typer.Exit(1)


@app.command()
def image(
    prompt: str,
    model: Annotated[str, typer.Option(help="Public model id (see `reapi models`).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the image.")],
    size: Annotated[str | None, typer.Option(help="WIDTHxHEIGHT.")] = None,
    n: Annotated[int, typer.Option(help="How many images.")] = 1,
    quality: Annotated[str | None, typer.Option()] = None,
    aspect_ratio: Annotated[str | None, typer.Option()] = None,
    resolution: Annotated[str | None, typer.Option()] = None,
    catalog: CatalogOption = None,
    provider_url: ProviderUrlOption = None,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Generate an image and write it to a file (name-1.png, name-2.png, ... for n > 1)."""
    try:
        with (
            _client(catalog, provider_url, base_url, api_key) as client,
            console.status(f"generating with {model}…"),
        ):
            result = client.images.generate(
                prompt=prompt,
                model=model,
                n=n,
                size=size,
                quality=quality,
                aspect_ratio=aspect_ratio,
                resolution=resolution,
            )
    except ReapiError as error:
        _fail(error)
        return
    for index, item in enumerate(result.data, start=1):
        target = output if len(result.data) == 1 else output.with_stem(f"{output.stem}-{index}")
        target.write_bytes(item.content())
        console.print(f"wrote {target}")
    if result.reapi:
        console.print(f"served by {result.reapi.route} in {result.reapi.attempts} attempt(s)")


@app.command()
def video(
    prompt: str,
    model: Annotated[str, typer.Option(help="Public model id (see `reapi models`).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the MP4.")],
    seconds: Annotated[int | None, typer.Option()] = None,
    size: Annotated[str | None, typer.Option(help="WIDTHxHEIGHT.")] = None,
    input_reference: Annotated[
        Path | None, typer.Option(help="A first-frame image (or the video to enhance).")
    ] = None,
    poll_interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 2.0,
    catalog: CatalogOption = None,
    provider_url: ProviderUrlOption = None,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Generate a video with a progress bar and write it to a file."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
    )
    try:
        with _client(catalog, provider_url, base_url, api_key) as client, progress:
            created = client.videos.create(
                prompt=prompt,
                model=model,
                seconds=seconds,
                size=size,
                input_reference=input_reference,
            )
            task = progress.add_task(f"{model} queued", total=100)

            def show(update: Video) -> None:
                progress.update(
                    task, completed=update.progress, description=f"{model} {update.status}"
                )

            final = client.videos.wait(created.id, poll_interval=poll_interval, on_progress=show)
            if final.status != "completed":
                code = final.error.code if final.error else "generation_failed"
                console.print(f"[red]video failed:[/red] {code}")
                raise typer.Exit(1)
            content = client.videos.download_content(final.id)
    except ReapiError as error:
        _fail(error)
        return
    content.write_to_file(output)
    console.print(f"wrote {output} ({len(content.content)} bytes)")


@app.command()
def simulate(
    port: Annotated[int, typer.Option(help="First port; simulators take consecutive ones.")] = 9100,
    host: Annotated[str, typer.Option(help="Loopback address to bind.")] = "127.0.0.1",
) -> None:
    """Run the built-in provider simulators on loopback (for examples, demos and benchmarks)."""
    from .testing import default_simulators, run_simulators

    handle = run_simulators(default_simulators(), host=host, base_port=port)
    typer.echo("reapi provider simulators are running (Ctrl-C to stop):")
    for name, url in handle.urls.items():
        typer.echo(f"  {name:<12} {url}")
    typer.echo(f'  control      {handle.control_url}  (POST /faults/NAME {{"fault": "hang"}})')
    flags = " ".join(f"--provider-url {n}={u}" for n, u in handle.provider_urls.items())
    typer.echo(
        f"\nTry:\n  OPENAI_API_KEY={handle.api_key} reapi image 'a lighthouse at dusk' "
        f"--model gpt-image-2 -o out.png {flags}"
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        handle.stop()


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # `reapi models --json | head`
        sys.exit(0)


if __name__ == "__main__":
    main()
