"""The `reapi` CLI against the OpenAI simulator."""

import json

import pytest
from typer.testing import CliRunner

from reapi.cli import app
from reapi.testing import OpenAISimulator, SimServer, is_mp4, is_png

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
