"""`reapi-server`: administration commands act on the data dir's database; `serve` and `demo`
start real servers (subprocesses on loopback)."""

import os
import re
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
from tests.server.live import free_port
from tests.server.sim_browser import choose
from tests.web.helpers import csrf_of
from typer.testing import CliRunner

from reapi.catalog import default_catalog
from reapi_server.cli import app
from reapi_server.migrate import head_revisions

runner = CliRunner()
KEY_LINE = re.compile(r"REAPI_API_KEY=(rk_live_\S+)")


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_administration(tmp_path, monkeypatch):
    monkeypatch.setenv("REAPI_DATA_DIR", str(tmp_path / "env-dir"))
    data = ["--data-dir", str(tmp_path / "d")]
    head = ", ".join(sorted(head_revisions()))
    assert cli("migrate", *data).strip() == f"database created at {head}"
    assert cli("migrate", *data).strip() == f"database is up to date ({head})"
    assert "balance=100" in cli(
        "accounts", "create", "--email", "Ops@Example.com", "--credits", "100", *data
    )
    output = cli("keys", "create", "--email", "ops@example.com", "--name", "ci", *data)
    key = KEY_LINE.search(output).group(1)
    key_id = re.search(r"key id: (key_\w+)", output).group(1)
    assert "balance=150" in cli(
        "credits", "grant", "--email", "ops@example.com", "--credits", "50", *data
    )
    listed = cli("keys", "list", "--email", "ops@example.com", *data)
    assert key_id in listed and key[-4:] in listed and key not in listed
    assert "revoked" in cli("keys", "revoke", key_id, *data)
    assert runner.invoke(app, ["keys", "revoke", key_id, *data]).exit_code == 1
    duplicate = runner.invoke(app, ["accounts", "create", "--email", "ops@example.com", *data])
    assert duplicate.exit_code == 1
    assert (tmp_path / "d" / "reapi.db").exists() and not (tmp_path / "env-dir").exists()
    assert "balance=0" in cli("accounts", "create", "--email", "env@example.com")
    assert (tmp_path / "env-dir" / "reapi.db").exists()  # REAPI_DATA_DIR when no flag


def _wait_for(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"server exited: {process.stdout.read() if process.stdout else ''}"
            )
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not start")


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def test_serve_runs_the_gateway(tmp_path):
    data = ["--data-dir", str(tmp_path)]
    cli("accounts", "create", "--email", "s@example.com", "--credits", "10", *data)
    key = KEY_LINE.search(cli("keys", "create", "--email", "s@example.com", *data)).group(1)
    port = free_port()
    env = {
        **os.environ,
        "OPENAI_API_KEY": "sk-not-used",
        "REAPI_LOG_JSON": "true",
        "REAPI_METRICS_LISTEN": "off",  # 9464 is everyone's default
    }
    process = subprocess.Popen(
        [_bin("reapi-server"), "serve", "--port", str(port), *data],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/healthz", process)
        # Ready once its database answers: on a loaded machine a moment after it listens.
        _wait_for(f"{base}/readyz", process)
        models = httpx.get(f"{base}/v1/models", headers={"authorization": f"Bearer {key}"})
        assert models.status_code == 200 and models.json()["object"] == "list"
        assert httpx.get(f"{base}/v1/models").status_code == 401
        if sys.platform.startswith("linux"):  # `pgrep reapi-server` finds it after its exec
            assert Path(f"/proc/{process.pid}/comm").read_text().strip() == "reapi-server"
    finally:
        process.terminate()
        output = process.communicate(timeout=15)[0]
    assert key not in output
    assert '"route":"/v1/models"' in output  # structured access log lines


@contextmanager
def running_demo(tmp_path, metrics_listen: str | None = "off"):
    """`reapi-server demo` in a subprocess: yields its base URL, the key it printed and its
    banner. `metrics_listen` None: the variable unset (the default metrics port)."""
    port = free_port()  # the simulators take any free ports (the demo's default)
    env = {k: v for k, v in os.environ.items() if k != "REAPI_METRICS_LISTEN"}
    if metrics_listen is not None:
        env["REAPI_METRICS_LISTEN"] = metrics_listen
    process = subprocess.Popen(
        [_bin("reapi-server"), "demo", "--port", str(port), "--data-dir", str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        # The demo's start (imports, migration, simulators) took over 30 s on a machine busy
        # with other work; how long it takes is not what the tests using it are about.
        deadline = time.monotonic() + 120
        key = None
        while key is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
            match = KEY_LINE.search(line)
            key = match.group(1) if match else None
        assert key, "".join(lines)
        base = f"http://127.0.0.1:{port}"
        while not any(line.strip().startswith("google") for line in lines):
            line = process.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        banner = "".join(lines)
        assert f"sign up at {base}/signup" in banner
        assert f"{(tmp_path / 'mail').resolve()}/" in banner
        _wait_for(f"{base}/healthz", process)
        # The first page request builds the web half: more than httpx's default 5 s when the
        # machine is busy.
        assert httpx.get(f"{base}/signup", timeout=60).status_code == 200
        yield base, key, banner
    finally:
        process.terminate()
        process.communicate(timeout=15)


def test_demo_prints_a_working_key_and_signs_in_with_the_simulated_github(tmp_path):
    with running_demo(tmp_path) as (base, key, banner):
        _sign_in_with_the_simulated_github(base, banner)
        response = httpx.post(
            f"{base}/v1/images/generations",
            json={"model": "gpt-image-2", "prompt": "a lighthouse"},
            headers={"authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert response.json()["data"][0]["b64_json"]


def _video_request(spec) -> dict:
    caps = spec.capabilities
    body = {"model": spec.id, "prompt": "waves at night"}
    if caps.seconds:
        body["seconds"] = str(caps.seconds[0])
    if caps.sizes:
        body["size"] = next(iter(caps.sizes))
    return body


def _demo_videos(catalog) -> list:
    return [
        m for m in catalog.models.values() if m.kind == "video" and m.capabilities.prompt_required
    ]


def _polls_before_done(simulator) -> int:
    """Status polls a simulator answers "not yet" before the one that says done."""
    if hasattr(simulator, "polls_before_done"):
        return int(simulator.polls_before_done)
    return int(simulator.polls_to_complete) - 1  # OpenAI's: done at that poll


#: How long a demo video may take by the demo's configuration (the gateway's first poll, then
#: each further poll at its provider's pace): "about two seconds".
DEMO_VIDEO_SECONDS = 2.0


def test_demo_videos_finish_in_about_two_seconds():
    """The simulators' poll hints apply in the demo, not the real providers' 5-15 s. Computed
    from the demo's own settings, catalog and simulators, as `run_demo` builds them, rather
    than timed (a loaded machine stretched the wall clock past any bound): a video is polled
    first after the gateway's `poll_interval`, then at its provider's `poll_interval`, and its
    simulator says done after a fixed number of polls. A slower setting anywhere (the demo's
    first poll, a simulator's hint, a hint the demo catalog drops, more polls) fails here."""
    from reapi.testing import default_simulators
    from reapi_server.config import Settings
    from reapi_server.demo import demo_catalog, demo_poll_interval

    simulators = default_simulators()
    catalog = demo_catalog(
        default_catalog(),
        {name: f"http://127.0.0.1/{name}" for name in simulators},
        {name: spec.poll_interval for name, spec in simulators.items()},
    )
    first = demo_poll_interval(Settings())
    videos = _demo_videos(catalog)
    assert len(videos) >= 4, [m.id for m in videos]
    for spec in videos:
        for route in spec.routes:
            hint = catalog.providers[route.provider].poll_interval
            assert hint is not None, (spec.id, route.provider)  # else the real API's 5-15 s
            polls = _polls_before_done(simulators[route.provider].app)
            took = first + polls * hint
            assert took <= DEMO_VIDEO_SECONDS, (spec.id, route.provider, first, polls, hint)


def test_demo_videos_complete(tmp_path):
    """Each demo video model's video completes, in the demo as started from the command line
    (how soon is the test above: here only a generous bound, so that a loaded machine does
    not fail it)."""
    with running_demo(tmp_path) as (base, key, _), httpx.Client(base_url=base, timeout=30) as http:
        headers = {"authorization": f"Bearer {key}"}
        ids = {}
        for spec in _demo_videos(default_catalog()):
            created = http.post("/v1/videos", json=_video_request(spec), headers=headers)
            if created.status_code != 404:  # a model no simulator serves is not in the demo
                assert created.status_code == 200, (spec.id, created.text)
                ids[spec.id] = created.json()["id"]
        assert len(ids) >= 4, ids
        pending = dict(ids)
        deadline = time.monotonic() + 90
        while pending and time.monotonic() < deadline:
            for model, video_id in list(pending.items()):
                status = http.get(f"/v1/videos/{video_id}", headers=headers).json()["status"]
                if status in ("completed", "failed"):
                    del pending[model]
            time.sleep(0.1)
    assert not pending, pending


#: A demo that refuses to start does so before its heavy start-up, but its imports alone took
#: over a minute once on a machine loaded far beyond its cores; the refusal is the point here.
_REFUSAL_LIMIT = 120


def test_demo_checks_its_port_before_printing_a_key(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = subprocess.run(
            [_bin("reapi-server"), "demo", "--port", str(port), "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=_REFUSAL_LIMIT,
        )
    assert done.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in done.stderr
    assert "REAPI_API_KEY" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_demo_checks_its_metrics_port_before_printing_a_key(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        metrics_port = taken.getsockname()[1]
        done = subprocess.run(
            [_bin("reapi-server"), "demo", "--port", str(free_port()), "--data-dir", str(tmp_path)],
            env={**os.environ, "REAPI_METRICS_LISTEN": f"127.0.0.1:{metrics_port}"},
            capture_output=True,
            text=True,
            timeout=_REFUSAL_LIMIT,
        )
    assert done.returncode == 1
    assert f"metrics port {metrics_port} on 127.0.0.1 is in use" in done.stderr
    assert "REAPI_API_KEY" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_a_second_demo_starts_beside_the_first_on_another_metrics_port(tmp_path):
    """`make demo PORT=8001` while a first demo runs: the default metrics port (9464) is the
    first's, so the second takes a free one rather than refusing to start. (Whoever holds 9464
    here, this test or another gateway on the machine, the second must start.)"""
    try:
        first = socket.create_server(("127.0.0.1", 9464))
    except OSError:
        first = None  # already held: the case itself
    try:
        with running_demo(tmp_path, metrics_listen=None) as (base, key, _):
            response = httpx.get(f"{base}/v1/models", headers={"authorization": f"Bearer {key}"})
            assert response.status_code == 200
    finally:
        if first is not None:
            first.close()


def test_make_demo_takes_a_port():
    root = Path(__file__).parents[2]
    done = subprocess.run(
        ["make", "-n", "-C", str(root), "demo", "PORT=8123", f"STAMP={os.devnull}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "reapi-server demo --port 8123" in done.stdout


def _sign_in_with_the_simulated_github(base: str, banner: str) -> None:
    """The demo's "Continue with GitHub" goes to the simulated GitHub's chooser page, and
    back: a new person lands on the consent page."""
    github = re.search(r"^\s+github\s+(http://\S+)$", banner, re.MULTILINE)
    assert github and "GitHub and Google sign-in are simulated here" in banner, banner
    with httpx.Client(base_url=base) as browser, httpx.Client() as at_github:
        login = browser.get("/login")
        assert "Continue with GitHub" in login.text and "Continue with Google" in login.text
        started = browser.post("/auth/github", data={"csrf_token": csrf_of(login.text)})
        assert started.status_code == 303
        assert started.headers["location"].startswith(github.group(1) + "/login/oauth/authorize?")
        callback = choose(at_github, started.headers["location"], "1001")
        assert callback.startswith(base + "/auth/github/callback?")
        back = browser.get(callback)
        assert back.status_code == 303 and back.headers["location"] == "/auth/consent"
        assert "ada@example.com" in browser.get("/auth/consent").text


def test_demo_sells_credits_through_the_simulated_stripe(tmp_path):
    """A person buys a pack in the demo end to end: the simulated Stripe's page takes the
    payment, its signed webhook credits the account, the receipt is in <data_dir>/mail/."""
    from tests.web.helpers import read_mail

    with running_demo(tmp_path) as (base, _, banner), httpx.Client(base_url=base) as browser:
        stripe = re.search(r"Stripe\s+is simulated at (http://\S+):", banner.replace("\n", " "))
        assert stripe, banner
        signup = browser.get("/signup")
        email = "buyer@example.com"
        created = browser.post(
            "/signup",
            data={
                "csrf_token": csrf_of(signup.text),
                "email": email,
                "password": "a long enough passphrase here",
                "age_16_plus": "yes",
                "accept_terms": "yes",
            },
        )
        assert created.status_code == 303, created.text
        deadline = time.monotonic() + 15
        while not (mail := [m for m in read_mail(tmp_path / "mail") if m.to == email]):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        verify = mail[0].link("/verify")
        page = browser.get(verify)
        browser.post(
            "/verify", data={"csrf_token": csrf_of(page.text), "token": mail[0].token("/verify")}
        )
        billing = browser.get("/dashboard/billing")
        assert "Continue to payment" in billing.text, billing.text
        started = browser.post(
            "/dashboard/billing/checkout",
            data={"csrf_token": csrf_of(billing.text), "pack": "starter"},
        )
        assert started.status_code == 303
        pay_url = started.headers["location"]
        assert pay_url.startswith(stripe.group(1))
        paid = httpx.post(pay_url, data={"action": "pay", "email": email, "card": "4242"})
        assert paid.status_code == 303
        success = browser.get(paid.headers["location"].removeprefix(base), timeout=30)
        assert "Payment received" in success.text, success.text
        history = browser.get("/dashboard/billing/history")
        assert "1,000 credits" in history.text and "/invoice/" in history.text
        deadline = time.monotonic() + 15
        while not any("receipt" in m.subject for m in read_mail(tmp_path / "mail")):
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_migrate_says_from_which_revision_to_which(tmp_path):
    """An upgrade printed `database is up to date` whether it had just migrated the schema,
    made it or found nothing to do: the operator could not tell which."""
    from alembic import command

    from reapi_server.migrate import alembic_config

    data = tmp_path / "d"
    data.mkdir()
    url = f"sqlite+aiosqlite:///{data}/reapi.db"
    command.upgrade(alembic_config(url), "0025_schema_compatibility")
    head = ", ".join(sorted(head_revisions()))
    said = cli("migrate", "--database-url", url).strip()
    assert said == f"database migrated from 0025_schema_compatibility to {head}"


def test_an_empty_list_says_so_on_stderr(tmp_path):
    """`payments list` and `promo list` printed nothing at all on a gateway with none: the
    operator could not tell an empty list from a command that did nothing."""
    data = ["--data-dir", str(tmp_path / "d")]
    for command, said in (
        (["payments", "list"], "no payments"),
        (["promo", "list"], "no promotion codes"),
    ):
        result = runner.invoke(app, [*command, *data])
        assert result.exit_code == 0, result.output
        assert result.stdout == "" and result.stderr.strip() == said
