"""One model memory budget across processes, kept in PostgreSQL.

Each `ModelManager` counts only its own models. When the HTTP server and Dagster runs share
a machine, every manager also takes a lease here before it loads a model: the lease is
granted only if the leases of every live process on the same device, plus this one, fit the
budget. A lease is renewed every few seconds by a background thread; a process that dies
(even by `kill -9`) stops renewing, and its leases expire after `stale_s`, or at once when
its pid is gone from this host. Chosen over taking Dagster's `gpu` pool in the server: the
pool admits one run at a time whatever it loads, and would block the server for a whole
run, while the ledger lets a small model in the server sit beside a small one in a run.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid

import sqlalchemy as sa

from media_assets.lib.db import locks

# pg_advisory_xact_lock: one reservation at a time, machine-wide (its own key: locks.py).
LOCK_ID = locks.MODEL_LEDGER
STALE_S = 30.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ModelLedger:
    """Leases of loaded models, shared by every process on a catalogue database."""

    def __init__(self, engine: sa.Engine, device: str, stale_s: float = STALE_S):
        self.engine = engine
        self.device = device
        self.stale_s = stale_s
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.holder = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:6]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, daemon=True,
                                        name="model-ledger")
        self._thread.start()

    def _clean(self, conn) -> None:
        """Drop expired leases, and those of processes on this host that are gone."""
        conn.execute(sa.text(
            "DELETE FROM model_leases WHERE renewed_at < now() - make_interval(secs => :s)"),
            {"s": self.stale_s})
        for pid, holder in conn.execute(sa.text(
                "SELECT DISTINCT pid, holder FROM model_leases WHERE host = :h AND holder <> :me"),
                {"h": self.host, "me": self.holder}).all():
            if not _alive(pid):
                conn.execute(sa.text("DELETE FROM model_leases WHERE holder = :o"), {"o": holder})

    def reserve(self, model: str, mb: float, budget_mb: float) -> bool:
        """Take a lease for `mb` if every live lease on this machine's device, plus it,
        fits (a shared catalogue serves many machines: each has its own GPU)."""
        with self.engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_ID})
            self._clean(conn)
            used = conn.execute(sa.text(
                "SELECT coalesce(sum(mb), 0) FROM model_leases WHERE device = :d AND host = :h "
                "AND NOT (holder = :me AND model = :m)"),
                {"d": self.device, "h": self.host, "me": self.holder, "m": model}).scalar_one()
            if float(used) + mb > budget_mb:
                return False
            conn.execute(sa.text(
                "INSERT INTO model_leases (holder, host, pid, device, model, mb) "
                "VALUES (:me, :h, :p, :d, :m, :mb) ON CONFLICT (holder, model) "
                "DO UPDATE SET mb = EXCLUDED.mb, renewed_at = now()"),
                {"me": self.holder, "h": self.host, "p": self.pid, "d": self.device,
                 "m": model, "mb": mb})
            return True

    def update(self, model: str, mb: float, footprint_key: str | None = None) -> None:
        """The measured footprint replaces the estimate, in the lease and, under
        `footprint_key`, for every later reservation of that model on this device."""
        with self.engine.begin() as conn:
            conn.execute(sa.text("UPDATE model_leases SET mb = :mb, renewed_at = now() "
                                 "WHERE holder = :me AND model = :m"),
                         {"mb": mb, "me": self.holder, "m": model})
            if footprint_key:
                conn.execute(sa.text(
                    "INSERT INTO model_footprints (device, model, mb) VALUES (:d, :k, :mb) "
                    "ON CONFLICT (device, model) DO UPDATE SET mb = EXCLUDED.mb, "
                    "measured_at = now()"), {"d": self.device, "k": footprint_key, "mb": mb})

    def footprint(self, footprint_key: str) -> float:
        """The last measured footprint of that model on this device (0: never measured)."""
        with self.engine.connect() as conn:
            mb = conn.execute(sa.text(
                "SELECT mb FROM model_footprints WHERE device = :d AND model = :k"),
                {"d": self.device, "k": footprint_key}).scalar()
        return float(mb or 0.0)

    def holders(self) -> list[tuple[str, str, float]]:
        """(who, model, MB) of every live lease on this machine's device, largest first."""
        with self.engine.begin() as conn:
            self._clean(conn)
            rows = conn.execute(sa.text(
                "SELECT holder, model, mb FROM model_leases WHERE device = :d AND host = :h "
                "ORDER BY mb DESC"), {"d": self.device, "h": self.host}).all()
        return [(("this process" if h == self.holder else f"pid {h.split(':')[1]}"), m,
                 float(mb)) for h, m, mb in rows]

    def release(self, model: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM model_leases WHERE holder = :me AND model = :m"),
                         {"me": self.holder, "m": model})

    def used_mb(self) -> float:
        """Every live lease on this machine's device (all its processes)."""
        with self.engine.begin() as conn:
            self._clean(conn)
            return float(conn.execute(sa.text(
                "SELECT coalesce(sum(mb), 0) FROM model_leases WHERE device = :d "
                "AND host = :h"), {"d": self.device, "h": self.host}).scalar_one())

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.stale_s / 3):
            try:
                with self.engine.begin() as conn:
                    conn.execute(sa.text("UPDATE model_leases SET renewed_at = now() "
                                         "WHERE holder = :me"), {"me": self.holder})
            except Exception:  # the database restarting: the next round tries again
                pass

    def close(self) -> None:
        """Release every lease of this process and stop renewing."""
        self._stop.set()
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.text("DELETE FROM model_leases WHERE holder = :me"),
                             {"me": self.holder})
        except Exception:
            pass
