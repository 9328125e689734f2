"""`reapi`: the catalog, and image or video generation from the terminal."""

from __future__ import annotations

import base64
import binascii
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from typer.core import TyperGroup

from ._client import ReAPI
from ._detached import translated
from ._entry import INTERRUPTED, interrupted
from ._exceptions import ReapiError
from ._files import write_whole
from .catalog import Catalog, ModelSpec, load_catalog
from .types import BinaryContent, Image, ImagesResponse, Model, Video

T = TypeVar("T")

console = Console(stderr=True)


class _DefaultCommandGroup(TyperGroup):
    """A group that runs `default_command` when the first argument names no subcommand:
    `reapi video "waves" ...` is `reapi video create "waves" ...`."""

    default_command = ""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


class _ImageGroup(_DefaultCommandGroup):
    default_command = "generate"


class _VideoGroup(_DefaultCommandGroup):
    default_command = "create"


# Locals off explicitly (typer before 0.23 showed them): a crash would print the prompt.
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help=__doc__,
    pretty_exceptions_show_locals=False,
)
image_app = typer.Typer(
    cls=_ImageGroup,
    no_args_is_help=True,
    help="Generate (the default) or edit images: reapi image PROMPT --model M -o out.png",
    pretty_exceptions_show_locals=False,
)
video_app = typer.Typer(
    cls=_VideoGroup,
    no_args_is_help=True,
    help="Start (the default), follow, download or cancel videos: "
    "reapi video PROMPT --model M -o out.mp4",
    pretty_exceptions_show_locals=False,
)
app.add_typer(image_app, name="image")
app.add_typer(video_app, name="video")

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
ModelOption = Annotated[str, typer.Option(help="Public model id (see `reapi models`).")]
PollOption = Annotated[float, typer.Option(help="Seconds between polls.")]
VideoId = Annotated[str, typer.Argument(help="The video id `reapi video` printed.")]


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


def _client(
    catalog: Path | None = None,
    provider_url: list[str] | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
) -> ReAPI:
    urls = {}
    for item in provider_url or []:
        name, sep, url = item.partition("=")
        if not sep:
            raise typer.BadParameter("use NAME=URL", param_hint="--provider-url")
        urls[name] = url
    # $REAPI_API_KEY fills `api_key` in-process too, where it has no use.
    key = api_key if base_url else None
    return ReAPI(base_url=base_url, api_key=key, catalog=catalog, provider_base_urls=urls)


def _say(message: str) -> None:
    """A line on stderr, never wrapped (ids and commands stay whole to copy)."""
    typer.echo(message, err=True)


#: Set once a command said what Ctrl-C interrupted (`main` says it otherwise).
_interruption_told = threading.Event()


def _say_interrupted(message: str) -> typer.Exit:
    _interruption_told.set()
    _say(message)
    return typer.Exit(INTERRUPTED)


def _fail(error: BaseException) -> typer.Exit:
    """The exit of a command that failed: the error's one-line message, or Ctrl-C's."""
    if isinstance(error, KeyboardInterrupt):
        return _say_interrupted("interrupted")
    typer.secho(f"error: {error}", err=True, fg="red")
    return typer.Exit(1)


def _reported(call: Callable[[], T]) -> T:
    """`call()`; a reapi error it raises ends the command with its message (`_fail`)."""
    return translated(call, ReapiError, _fail)


# -- models ----------------------------------------------------------------------------------
@app.command()
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    catalog: CatalogOption = None,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """List the models (with --base-url: those that gateway serves).

    Without --base-url: the catalog, with each model's routes, capabilities and price.
    """
    if base_url:

        def listed() -> list[Model]:
            with _client(base_url=base_url, api_key=api_key) as client:
                return client.models.list().data

        served = _reported(listed)
        if as_json:
            typer.echo(json.dumps([m.model_dump() for m in served], indent=2))
            return
        table = Table("model", "owned by")
        for model in served:
            table.add_row(model.id, model.owned_by or "")
        Console().print(table)
        return
    loaded = load_catalog(catalog)
    if as_json:
        typer.echo(json.dumps(catalog_as_json(loaded), indent=2))
        return
    table = Table("model", "kind", "routes (in order)", "price")
    for spec in loaded.models.values():
        price = f"{spec.price.credits} credits / {spec.price.unit}"
        table.add_row(spec.id, spec.kind, " → ".join(r.key for r in spec.routes), price)
    Console().print(table)


# -- images ----------------------------------------------------------------------------------
ImageOutput = Annotated[
    Path,
    typer.Option(
        "-o", "--output", help="Where to write the image (name-1, name-2, ... for n > 1)."
    ),
]
SizeOption = Annotated[str | None, typer.Option(help="WIDTHxHEIGHT.")]
CountOption = Annotated[int, typer.Option("-n", "--n", help="How many images.")]
QualityOption = Annotated[str | None, typer.Option(help="low, medium, high (model-dependent).")]
FormatOption = Annotated[
    str | None, typer.Option("--output-format", help="png, jpeg or webp (model-dependent).")
]


def _image_bytes(item: Image, index: int) -> bytes:
    if item.b64_json is None:
        raise _fail(ValueError(f"image {index} came as a URL, not as its bytes"))
    try:
        return base64.b64decode(item.b64_json, validate=True)
    except binascii.Error:
        pass
    raise _fail(ValueError(f"image {index} is not valid base64"))


def _write_images(result: ImagesResponse, output: Path, asked: int) -> None:
    """The first `asked` images, each decoded before any is written. An answer is the
    gateway's (or another OpenAI-compatible server's) to write: one with no image, or an image
    as a URL or in broken base64, ends the command with one line, and more images than asked
    for do not rename the file asked for."""
    images = [_image_bytes(item, i) for i, item in enumerate(result.data[:asked], start=1)]
    if not images:
        raise _fail(ValueError("the answer held no image"))
    for index, content in enumerate(images, start=1):
        target = output if len(images) == 1 else output.with_stem(f"{output.stem}-{index}")
        write_whole(target, content)
        _say(f"wrote {target}")
    if result.reapi:
        _say(f"served by {result.reapi.route} in {result.reapi.attempts} attempt(s)")


@image_app.command("generate")
def image_generate(
    prompt: str,
    model: ModelOption,
    output: ImageOutput,
    size: SizeOption = None,
    n: CountOption = 1,
    quality: QualityOption = None,
    output_format: FormatOption = None,
    aspect_ratio: Annotated[str | None, typer.Option()] = None,
    resolution: Annotated[str | None, typer.Option()] = None,
    catalog: CatalogOption = None,
    provider_url: ProviderUrlOption = None,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Generate images from a prompt and write them to files."""

    def generated() -> ImagesResponse:
        with (
            _client(catalog, provider_url, base_url, api_key) as client,
            console.status(f"generating with {model}…"),
        ):
            return client.images.generate(
                prompt=prompt,
                model=model,
                n=n,
                size=size,
                quality=quality,
                output_format=output_format,
                aspect_ratio=aspect_ratio,
                resolution=resolution,
            )

    _write_images(_reported(generated), output, n)


@image_app.command("edit")
def image_edit(
    prompt: str,
    model: ModelOption,
    output: ImageOutput,
    image: Annotated[
        list[Path],
        typer.Option("--image", "-i", help="An input image (repeatable: several are composed)."),
    ],
    mask: Annotated[
        Path | None, typer.Option(help="A PNG whose transparent pixels mark what to change.")
    ] = None,
    size: SizeOption = None,
    n: CountOption = 1,
    quality: QualityOption = None,
    output_format: FormatOption = None,
    catalog: CatalogOption = None,
    provider_url: ProviderUrlOption = None,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Edit or compose input images (and an optional mask) as the prompt says."""

    def edited() -> ImagesResponse:
        with (
            _client(catalog, provider_url, base_url, api_key) as client,
            console.status(f"editing with {model}…"),
        ):
            return client.images.edit(
                prompt=prompt,
                model=model,
                image=list(image),
                mask=mask,
                n=n,
                size=size,
                quality=quality,
                output_format=output_format,
            )

    _write_images(_reported(edited), output, n)


# -- videos ----------------------------------------------------------------------------------
class VideoProgress:
    """A progress bar that pulses (no percentage) while the provider reports no progress, and
    fills once it does: many providers report none until the video is done."""

    def __init__(self, label: str, stream: Console = console) -> None:
        self.label = label
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=stream,
        )
        self.task: TaskID = self.bar.add_task(f"{label} queued", total=None)

    def show(self, video: Video) -> None:
        known = video.progress > 0 or video.status == "completed"
        self.bar.update(
            self.task,
            total=100 if known else None,
            completed=100 if video.status == "completed" else video.progress,
            description=f"{self.label} {video.status}",
        )

    def __enter__(self) -> VideoProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()


def _follow(
    client: ReAPI,
    video_id: str,
    output: Path | None,
    poll_interval: float,
    label: str,
) -> None:
    """Wait with a progress bar, then download. Ctrl-C leaves the video running upstream and
    says how to pick it up again."""

    def interrupted(_: BaseException) -> typer.Exit:
        target = f" -o {output}" if output is not None else " -o video.mp4"
        return _say_interrupted(
            f"interrupted: video {video_id} keeps running. Pick it up with:\n"
            f"  reapi video wait {video_id}{target}"
        )

    def waited() -> Video:
        with VideoProgress(label) as progress:
            return client.videos.wait(
                video_id, poll_interval=poll_interval, on_progress=progress.show
            )

    final = translated(waited, KeyboardInterrupt, interrupted)
    if final.status != "completed":
        code = final.error.code if final.error else "generation_failed"
        typer.secho(f"video failed: {code}", err=True, fg="red")
        raise typer.Exit(1)
    if output is not None:
        content = client.videos.download_content(final.id)
        content.write_to_file(output)
        _say(f"wrote {output} ({len(content.content)} bytes)")


@video_app.command("create")
def video_create(
    prompt: str,
    model: ModelOption,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Wait for the video and write it here (else print the id)."
        ),
    ] = None,
    seconds: Annotated[int | None, typer.Option()] = None,
    size: SizeOption = None,
    input_reference: Annotated[
        Path | None, typer.Option(help="A first-frame image (or the video to enhance).")
    ] = None,
    poll_interval: PollOption = 2.0,
    catalog: CatalogOption = None,
    provider_url: ProviderUrlOption = None,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Start a video: its id is printed at once; with -o, wait for it and write the MP4.

    The id goes to stdout, everything else to stderr: ID=$(reapi video "waves" --model M).
    """

    def run() -> None:
        with _client(catalog, provider_url, base_url, api_key) as client:
            created = client.videos.create(
                prompt=prompt,
                model=model,
                seconds=seconds,
                size=size,
                input_reference=input_reference,
            )
            typer.echo(created.id)
            if output is None:
                _say(f"started; follow it with: reapi video wait {created.id} -o video.mp4")
                return
            _follow(client, created.id, output, poll_interval, model)

    # Ctrl-C before the job existed: nothing keeps running (once it exists, `_follow` says so).
    translated(run, (ReapiError, KeyboardInterrupt), _fail)


@video_app.command("status")
def video_status(
    video_id: VideoId,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the video object as JSON.")
    ] = False,
    catalog: CatalogOption = None,
    provider_url: ProviderUrlOption = None,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Show a video's status and progress."""

    def retrieved() -> Video:
        with _client(catalog, provider_url, base_url, api_key) as client:
            return client.videos.retrieve(video_id)

    video = _reported(retrieved)
    if as_json:
        typer.echo(video.model_dump_json(indent=2, exclude_none=True))
        return
    line = f"{video.status} {video.progress}%"
    if video.error is not None:
        line += f" ({video.error.code})"
    typer.echo(line)


@video_app.command("wait")
def video_wait(
    video_id: VideoId,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the finished MP4 here.")
    ] = None,
    poll_interval: PollOption = 2.0,
    catalog: CatalogOption = None,
    provider_url: ProviderUrlOption = None,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Wait for a video with a progress bar (and write it with -o)."""

    def run() -> None:
        with _client(catalog, provider_url, base_url, api_key) as client:
            _follow(client, video_id, output, poll_interval, "video")

    _reported(run)


@video_app.command("download")
def video_download(
    video_id: VideoId,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write it.")],
    variant: Annotated[
        str, typer.Option(help="video, thumbnail or spritesheet (provider-dependent).")
    ] = "video",
    catalog: CatalogOption = None,
    provider_url: ProviderUrlOption = None,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Download a finished video (or its thumbnail)."""
    if variant not in ("video", "thumbnail", "spritesheet"):
        raise typer.BadParameter("video, thumbnail or spritesheet", param_hint="--variant")
    chosen: Literal["video", "thumbnail", "spritesheet"] = variant  # type: ignore[assignment]

    def downloaded() -> BinaryContent:
        with _client(catalog, provider_url, base_url, api_key) as client:
            return client.videos.download_content(video_id, variant=chosen)

    content = _reported(downloaded)
    content.write_to_file(output)
    _say(f"wrote {output} ({len(content.content)} bytes)")


@video_app.command("cancel")
def video_cancel(
    video_id: VideoId,
    catalog: CatalogOption = None,
    provider_url: ProviderUrlOption = None,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Cancel a video that is not finished (or delete a finished one)."""

    def ended_before() -> bool:
        """Whether the video had ended: the same call deletes it then, and the line says so."""
        with _client(catalog, provider_url, base_url, api_key) as client:
            ended = client.videos.retrieve(video_id).status in ("completed", "failed")
            client.videos.delete(video_id)
            return ended

    _say(f"{'deleted' if _reported(ended_before) else 'cancelled'} {video_id}")


# -- simulators ------------------------------------------------------------------------------
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
    # A gateway calls only the providers it has a key for: every one, so that each simulator
    # serves its models (the `Try:` line above needs one key only).
    typer.echo("\nA gateway (reapi-server serve) on the simulators needs, in its environment:")
    for name, value in handle.gateway_environment.items():
        typer.echo(f"  {name}={value}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        handle.stop()


def main() -> None:
    """The command line, run as `reapi` (from `reapi._entry`, which covers Ctrl-C during the
    imports). typer ends a command Ctrl-C interrupted with exit code 130 but says nothing: say
    `interrupted`, unless the command said more (`_say_interrupted`)."""
    try:
        app()
    except BrokenPipeError:  # `reapi models --json | head`
        sys.exit(0)
    except SystemExit as leaving:
        if leaving.code == INTERRUPTED:
            interrupted(said=_interruption_told.is_set())
        raise
    except KeyboardInterrupt:  # outside typer's reach (its own exit, say)
        interrupted(said=_interruption_told.is_set())


if __name__ == "__main__":
    main()
