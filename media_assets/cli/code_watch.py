"""`media-assets dev`'s watchdog: a code location whose server died is reloaded without a click.

`dagster dev` serves each code location through a proxy process that forwards every call to
a child gRPC server holding the project's code (dagster 1.13, `_grpc/proxy_server.py`).
Dagster restarts the proxy when it exits, but not the child: when the child dies (the
kernel's OOM killer picks it, since it imports the models' libraries), the UI and the daemon
mark the location failed with `DagsterUserCodeUnreachableError`, the sensors stop, and the
location stays failed until someone clicks Reload. Reload (`reloadRepositoryLocation`, what
the button sends) makes the proxy start a new child; the daemon sees the new server id and
reloads too. This thread sends that mutation when the UI reports the location unreachable.

Runs queued meanwhile wait instead of failing: dagster.yaml's `run_queue` retries a run
whose code location cannot be reached (every 10 s, 30 times) before failing it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

import httpx

LOCATIONS = """query { workspaceOrError { __typename ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message className } }
} } } }"""
RELOAD = """mutation($name: String!) {
  reloadRepositoryLocation(repositoryLocationName: $name) { __typename } }"""
# Only a server that cannot be reached is reloaded: a location that fails to import (a
# syntax error being edited) would fail again on every reload, each one a new process.
UNREACHABLE = "DagsterUserCodeUnreachableError"
MIN_GAP_S = 30.0  # between two reloads of one location


class CodeWatch(threading.Thread):
    """Every `interval` seconds, asks the UI at `url` how its code locations are; reloads one
    that is unreachable (at most once per `MIN_GAP_S`), and says through `log` when it does
    and when the location is loaded again."""

    def __init__(self, url: str, log: Callable[[str], None], interval: float = 5.0):
        super().__init__(name="media-assets-code-watch", daemon=True)
        self.url, self.log, self.interval = url.rstrip("/") + "/graphql", log, interval
        self.stopping = threading.Event()
        self.reloaded: dict[str, float] = {}  # location -> when it was last reloaded

    def run(self) -> None:
        with httpx.Client(timeout=60) as client:
            while not self.stopping.wait(self.interval):
                self.check(client)

    def stop(self) -> None:
        self.stopping.set()

    def check(self, client: httpx.Client) -> list[str]:
        """One look: the names of the locations it asked to reload."""
        try:
            reply = client.post(self.url, json={"query": LOCATIONS}).json()
            entries = reply["data"]["workspaceOrError"].get("locationEntries") or []
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return []  # the UI is starting or stopping: nothing to judge yet
        reloaded = []
        for entry in entries:
            name, error = entry["name"], entry.get("locationOrLoadError") or {}
            if error.get("__typename") == "RepositoryLocation" and name in self.reloaded:
                del self.reloaded[name]
                self.log(f"code location {name!r} is loaded again")
            if (entry.get("loadStatus") != "LOADED" or error.get("__typename") != "PythonError"
                    or error.get("className") != UNREACHABLE):
                continue
            if time.monotonic() - self.reloaded.get(name, -MIN_GAP_S) < MIN_GAP_S:
                continue
            self.reloaded[name] = time.monotonic()
            self.log(f"code location {name!r} is unreachable (its code server died?): "
                     "reloading it")
            # The reply may still say unreachable (the UI can reload before the new server
            # answers); the next looks see the location loaded, or ask again after MIN_GAP_S.
            with contextlib.suppress(httpx.HTTPError):
                client.post(self.url, json={"query": RELOAD, "variables": {"name": name}})
            reloaded.append(name)
        return reloaded
