"""Long-running servers: `serve` (the HTTP API and page), `dev` (the Dagster UI and daemon),
and `db` (the embedded PostgreSQL server)."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from media_assets.cli.output import check_device, fail, get_settings, open_db
from media_assets.cli.run import FAST_PLANNING, instance_for
from media_assets.lib.settings import PROJECT_ROOT


@click.command()
@click.option("--port", "-p", default=3000, show_default=True)
@click.option("--host", "-h", default="127.0.0.1", show_default=True)
def dev(port: int, host: str):
    """Start (or attach to) the database, then the Dagster UI and daemon on workspace.yaml."""
    settings = get_settings()
    check_device(settings)
    catalog = open_db(settings)
    instance_for(settings, catalog).dispose()
    settings.inbox.mkdir(parents=True, exist_ok=True)
    env = dev_env(settings)
    url = ui_url(host, port)
    remember_ui_url(settings, url)
    click.echo(f"inbox: {settings.inbox}\ncatalog: "
               f"{catalog.url.render_as_string(hide_password=True)}\n"
               f"UI: {url}")
    dagster = Path(sys.executable).with_name("dagster")
    args = [str(dagster), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"),
            "-p", str(port), "-h", host, "--log-level", "info"]
    # Run from DAGSTER_HOME: from the project folder, dagster dev warns that the dagster.yaml
    # there is not the instance's (prepare_dagster_home copied it here). A child, not exec:
    # this process watches the code location beside it (cli/code_watch.py says why).
    sys.exit(supervise(args, env, cwd=settings.dagster_home, ui=url))


def dev_env(settings) -> dict[str, str]:
    """The environment of every process `dev` starts: the UI, the daemon, the code server
    and each run."""
    env = dict(FAST_PLANNING, **os.environ)  # the daemon and the UI create the runs
    env.update(MEDIA_ASSETS_HOME=str(settings.home), MEDIA_ASSETS_INBOX=str(settings.inbox))
    # Every process dagster dev starts (code server, daemon, each run) is a new interpreter:
    # platformdirs' note on a missing XDG_RUNTIME_DIR (pgserver asks for a runtime folder)
    # would print once per run. Its fallback folder is the one this process used too. And
    # `dagster dev` notes that `dg dev` supersedes it: a note for this project's developers.
    env["PYTHONWARNINGS"] = ",".join(filter(None, [
        os.environ.get("PYTHONWARNINGS"), "ignore:XDG_RUNTIME_DIR is not set",
        "ignore:Function `dev_command` is superseded"]))
    # A run's log is no terminal: the model libraries' "Loading weights" bars became one
    # line of carriage returns per run in dev's output (7 of 206 lines in 10 minutes).
    # Each run's own log in the UI says which model it loaded and how long it took.
    env.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return env


def supervise(args: list[str], env: dict, cwd: Path, ui: str) -> int:
    """Run `dagster dev` (`args`) in its own session, hand it the signals this process gets
    (Ctrl-C reaches it once, as if typed at it), reload its code location when its server
    dies, and return its exit status."""
    from media_assets.cli.code_watch import CodeWatch

    child: subprocess.Popen | None = None

    def forward(signo, _frame):
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signo)

    # Handlers before the child starts: a handled signal is reset to its default in the
    # child, an ignored one stays ignored. Started in the background by a shell, this
    # process ignores SIGINT, and `dagster dev` (which treats SIGTERM as SIGINT) would then
    # ignore both and never stop.
    for signo in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signo, forward)
    child = subprocess.Popen(args, env=env, cwd=cwd, start_new_session=True)
    watch = CodeWatch(ui, log=lambda line: click.echo(
        f"{time.strftime('%Y-%m-%d %H:%M:%S %z')} - media-assets dev - {line}", err=True))
    watch.start()
    try:
        return child.wait()
    finally:
        watch.stop()


UI_URL_FILE = "ui_url"


def ui_url(host: str, port: int) -> str:
    """The address a browser uses: a wildcard bind is reached on loopback."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def remember_ui_url(settings, url: str) -> None:
    """Record where `dev` serves the UI, for `where`'s links."""
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    (settings.dagster_home / UI_URL_FILE).write_text(url + "\n")


def remembered_ui_url(settings, default: str = "http://127.0.0.1:3000") -> str:
    """The UI address the last `media-assets dev` on this home served, else Dagster's default."""
    try:
        return (settings.dagster_home / UI_URL_FILE).read_text().strip() or default
    except OSError:
        return default


def _cannot_bind(host: str, port: int) -> str | None:
    """Why uvicorn could not bind host:port (in use, no such address), or None. Asked
    first, as uvicorn binds (SO_REUSEADDR), so the user reads a reason and exit 2 instead
    of the address followed by uvicorn's error and exit 3."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:
        return "the port is in use (another server?)" if exc.errno == errno.EADDRINUSE \
            else (exc.strerror or str(exc))
    return None


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback needs MEDIA_ASSETS_API_TOKEN.")
@click.option("--port", default=8000, type=click.IntRange(1, 65535), show_default=True)
def serve(host: str, port: int):
    """The HTTP API (OpenAPI docs at /docs) and the web page at /."""
    import uvicorn

    from media_assets.api.app import create_app

    from media_assets.api.security import serving_settings
    from media_assets.lib.settings import SettingsError

    try:  # off loopback: a token of 16+ characters, and the bound name an allowed Host
        settings = serving_settings(get_settings(), host)
    except SettingsError as exc:
        fail(str(exc), code=2)
    check_device(settings)
    taken = _cannot_bind(host, port)
    if taken:
        fail(f"cannot serve on {host}:{port}: {taken}; choose another with --port", 2)
    click.echo(f"media_assets on http://{host}:{port}/  (API docs: /docs)", err=True)
    if host in ("0.0.0.0", "::") and not settings.api_allowed_hosts:
        click.echo("note: only loopback Host names are answered; set "
                   "MEDIA_ASSETS_API_ALLOWED_HOSTS to the names clients use", err=True)
    import torch

    from media_assets.lib.models.text_embedder import limit_threads

    # Requests run side by side on the lanes' threads: each torch operation, and each batch
    # of the text model's engine, on one thread (MEDIA_ASSETS_API_TORCH_THREADS) instead of
    # all of them fighting over every core. Process-wide, so set here for the server
    # process, not by the app a test embeds.
    torch.set_num_threads(settings.api_torch_threads)
    limit_threads(settings.api_torch_threads)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


@click.group()
def db():
    """The embedded PostgreSQL server."""


@db.command("url")
def db_url():
    """Print the catalog's URL (for psql or other tools)."""
    catalog = open_db(get_settings())
    click.echo(catalog.url.set(drivername="postgresql").render_as_string(hide_password=False))


@db.command("stop")
def db_stop():
    """Stop the embedded server (it otherwise outlives the commands that started it)."""
    from media_assets.lib.db.server import stop_embedded

    settings = get_settings()
    click.echo("stopped" if stop_embedded(settings.pgdata) else "not running")

