"""The `reapi` CLI against the OpenAI simulator."""

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from rich.console import Console
from tests.sdk.scripted_gateway import PNG_B64, serve
from typer.testing import CliRunner

from reapi.cli import VideoProgress, app
from reapi.testing import OpenAISimulator, SimServer, is_mp4, is_png
from reapi.types import Video

runner = CliRunner()


@pytest.fixture
def sim():
    with SimServer(OpenAISimulator("sk-sim", polls_to_complete=1)) as server:
        yield server


def test_models_json_lists_routes_and_capabilities():
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0
    models = {m["id"]: m for m in json.loads(result.stdout)}
    assert models["gpt-image-2"]["routes"][0]["provider"] == "openai"
    assert "capabilities" in models["gpt-image-2"]


def test_image_and_video_commands(sim, tmp_path, monkeypatch, catalog):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-sim")
    # A gateway key in the environment has no use in-process, and is no error there.
    monkeypatch.setenv("REAPI_API_KEY", "rk_live_unused")
    monkeypatch.delenv("REAPI_BASE_URL", raising=False)
    url = f"openai={sim.base_url}/v1"
    out = tmp_path / "fox.png"
    result = runner.invoke(
        app, ["image", "a fox", "--model", "gpt-image-2", "-o", str(out), "--provider-url", url]
    )
    assert result.exit_code == 0, result.output
    assert is_png(out.read_bytes())

    catalog_file = tmp_path / "catalog.json"
    data = catalog.model_dump(mode="json")
    data["models"] = list(data["models"].values())
    data["models"][1]["routes"] = [{"provider": "openai", "upstream_model": "sora-2"}]
    catalog_file.write_text(json.dumps({"models": [data["models"][1]]}))
    video = tmp_path / "waves.mp4"
    result = runner.invoke(
        app,
        [
            "video",
            "waves",
            "--model",
            "sim-video",
            "-o",
            str(video),
            "--seconds",
            "4",
            "--poll-interval",
            "0.01",
            "--catalog",
            str(catalog_file),
            "--provider-url",
            url,
        ],
    )
    assert result.exit_code == 0, result.output
    assert is_mp4(video.read_bytes())


def test_errors_are_one_line_and_exit_1(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-sim")
    result = runner.invoke(
        app,
        [
            "image",
            "p",
            "--model",
            "gpt-image-2",
            "-o",
            str(tmp_path / "x.png"),
            "--size",
            "3x3",
            "--provider-url",
            f"openai={sim.base_url}/v1",
        ],
    )
    assert result.exit_code == 1 and "size is not supported" in result.output


def _video_catalog(tmp_path, catalog) -> str:
    data = catalog.model_dump(mode="json")
    video = data["models"]["sim-video"]
    video["routes"] = [{"provider": "openai", "upstream_model": "sora-2"}]
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"models": [video]}))
    return str(path)


@pytest.fixture
def video_cli(sim, tmp_path, monkeypatch, catalog):
    """Runs `reapi video ...` against the simulator with the sim-video model."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-sim")
    flags = [
        "--catalog",
        _video_catalog(tmp_path, catalog),
        "--provider-url",
        f"openai={sim.base_url}/v1",
    ]

    def run(*args: str):
        return runner.invoke(app, ["video", *args, *flags])

    return run


def test_video_prints_the_id_at_once_and_the_subcommands_follow_it(video_cli, tmp_path):
    started = video_cli("waves", "--model", "sim-video", "--seconds", "4")
    assert started.exit_code == 0, started.output
    video_id = started.stdout.strip()
    assert video_id.startswith("video_") and "reapi video wait" in started.stderr

    status = video_cli("status", video_id)
    assert status.exit_code == 0 and status.stdout.split()[0] in ("queued", "completed")
    out = tmp_path / "waves.mp4"
    waited = video_cli("wait", video_id, "-o", str(out), "--poll-interval", "0.01")
    assert waited.exit_code == 0, waited.output
    assert is_mp4(out.read_bytes())
    assert video_cli("status", video_id).stdout.strip() == "completed 100%"
    again = tmp_path / "again.mp4"
    assert video_cli("download", video_id, "-o", str(again)).exit_code == 0
    assert again.read_bytes() == out.read_bytes()
    deleted = video_cli("cancel", video_id)  # a finished video is deleted, and it says so
    assert deleted.exit_code == 0 and f"deleted {video_id}" in deleted.stderr
    assert "cancelled" not in deleted.stderr


def test_cancel_says_cancelled_for_a_video_still_running(sim, video_cli):
    sim.app.polls_to_complete = 1_000  # it stays in progress
    video_id = video_cli("waves", "--model", "sim-video", "--seconds", "4").stdout.strip()
    cancelled = video_cli("cancel", video_id)
    assert cancelled.exit_code == 0 and f"cancelled {video_id}" in cancelled.stderr


def test_image_edit_with_files_a_mask_n_and_output_format(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-sim")
    from reapi.testing._media import png_bytes

    source, mask = tmp_path / "in.png", tmp_path / "mask.png"
    source.write_bytes(png_bytes(8, 8))
    mask.write_bytes(png_bytes(8, 8))
    out = tmp_path / "edited.png"
    result = runner.invoke(
        app,
        [
            "image", "edit", "add a moon", "--model", "gpt-image-2", "-o", str(out),
            "--image", str(source), "--image", str(source), "--mask", str(mask),
            "-n", "2", "--output-format", "png",
            "--provider-url", f"openai={sim.base_url}/v1",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert is_png((tmp_path / "edited-1.png").read_bytes())
    assert is_png((tmp_path / "edited-2.png").read_bytes())


def test_a_mistyped_model_suggests_the_nearest(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-sim")
    result = runner.invoke(app, ["image", "p", "--model", "gpt-image-3", "-o", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert "did you mean 'gpt-image-2'?" in result.stderr


def test_models_lists_what_a_gateway_serves():
    models = {
        "object": "list",
        "data": [{"id": "gpt-image-2", "object": "model", "owned_by": "openai"}],
    }
    server, gateway = serve((200, {}, models))
    with server:
        result = runner.invoke(
            app, ["models", "--base-url", server.base_url + "/v1", "--api-key", "rk", "--json"]
        )
    assert result.exit_code == 0, result.output
    assert [m["id"] for m in json.loads(result.stdout)] == ["gpt-image-2"]
    assert gateway.seen[0].path == "/v1/models"
    assert gateway.seen[0].headers["authorization"] == "Bearer rk"


def _gateway(server: SimServer) -> list[str]:
    return ["--base-url", server.base_url + "/v1", "--api-key", "rk"]


@pytest.mark.parametrize(
    ("data", "said"),
    [
        ([{"url": "https://cdn.example/x.png"}], "image 1 came as a URL, not as its bytes"),
        ([], "the answer held no image"),
        ([{"b64_json": PNG_B64}, {"b64_json": "a"}], "image 2 is not valid base64"),
    ],
)
def test_an_answer_without_usable_images_is_a_one_line_error(tmp_path, data, said):
    """What a gateway answers is not the CLI's to trust (it may be another OpenAI-compatible
    server, or a broken one): an image as a URL or in broken base64 was a 35-line traceback,
    and no image at all wrote nothing and exited 0. Nothing is written unless every image is."""
    server, _ = serve((200, {}, {"created": 1, "data": data}))
    target = tmp_path / "out.png"
    with server:
        result = runner.invoke(
            app,
            [
                *("image", "p", "--model", "gpt-image-2", "-o", str(target)),
                *("-n", str(len(data) or 1), *_gateway(server)),
            ],
        )
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == f"error: {said}"
    assert list(tmp_path.iterdir()) == []


def test_more_images_than_asked_for_writes_only_those_asked_for(tmp_path):
    server, _ = serve((200, {}, {"created": 1, "data": [{"b64_json": PNG_B64}] * 3}))
    target = tmp_path / "out.png"
    with server:
        result = runner.invoke(
            app,
            ["image", "p", "--model", "gpt-image-2", "-o", str(target), *_gateway(server)],
        )
    assert result.exit_code == 0, result.output
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_the_progress_bar_pulses_until_the_provider_reports_progress():
    progress = VideoProgress("sim-video", Console(file=io.StringIO()))
    task = progress.bar.tasks[0]
    progress.show(Video(id="v", model="m", status="in_progress", progress=0, created_at=1))
    assert task.total is None  # indeterminate: no "0 %" that never moves
    progress.show(Video(id="v", model="m", status="in_progress", progress=40, created_at=1))
    assert (task.total, task.completed) == (100, 40)
    progress.show(Video(id="v", model="m", status="completed", progress=0, created_at=1))
    assert (task.total, task.completed) == (100, 100)


INTERRUPTIBLE_CLI = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'reapi'; from reapi.cli import main; main()"
)


def test_ctrl_c_says_the_video_keeps_running(tmp_path, catalog):
    never = OpenAISimulator("sk-sim", polls_to_complete=10**6)
    with SimServer(never) as server:
        process = subprocess.Popen(
            [
                # Ctrl-C's own handler, even where this test runs with SIGINT ignored (a CI job
                # in the background): the child would inherit that and never see the signal.
                sys.executable, "-c", INTERRUPTIBLE_CLI,
                "video", "waves", "--model", "sim-video",
                "-o", str(tmp_path / "w.mp4"), "--poll-interval", "0.05",
                "--catalog", _video_catalog(tmp_path, catalog),
                "--provider-url", f"openai={server.base_url}/v1",
            ],
            env={**os.environ, "OPENAI_API_KEY": "sk-sim"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        video_id = process.stdout.readline().strip()
        assert video_id.startswith("video_")
        time.sleep(0.5)  # polling
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert f"video {video_id} keeps running" in stderr
    assert f"reapi video wait {video_id} -o {tmp_path / 'w.mp4'}" in stderr
    assert "Traceback" not in stderr
