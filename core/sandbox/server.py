"""The sandbox's HTTP server: Graph requests on loopback, plus admin endpoints.

    SandboxServer(port=0, seed=7).start()  → .url, .token, .account_ids, .state
    SandboxServer(state_file="var/sandbox-state.json")  → keeps its state across restarts
    SandboxServer(report_seconds=2.0)       → each async insights report runs 2 s
    run_server(...)                         → blocking; first stdout line is JSON

With a state file, the server starts from the state it holds (or writes one for a new
world), and rewrites it — to a temporary file, then renamed over it — after every
request that changed something, before answering: what a client was told succeeded is
on disk. The token is kept in it too, so stored tokens keep working after a restart.
A state file the server cannot read, or one made from another seed or scenario, stops
it with a message naming the file and the fix (it never starts over silently: the
client's record would then claim changes the sandbox no longer has). A reset goes back
to the generated world and rewrites the file.

Admin endpoints (no token; for tests and demos) live under /__sandbox:
`GET writes` · `GET requests` · `GET|POST faults` · `POST reset` · `POST insights`
(override one ad's day) · `GET state` · `GET activities` (the change history) ·
`POST edit` (a person changes an object in Ads Manager) · `GET|POST clock` (the
sandbox's now; `{"advance_days": N}` or `{"to": "YYYY-MM-DD"}` moves it forward) ·
`GET truth?adset_id=…&date=…` (what the market expects of an ad set that day).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import secrets
import signal
import sys
import threading
import time
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from core.errors import RexError
from core.money import MoneyError, to_minor
from core.sandbox.faults import FaultConfig, Faults
from core.sandbox.graph import Graph, GraphFailure, RawAnswer
from core.sandbox.scenario import ScenarioSpec, build_world, load_scenario
from core.sandbox.world import Day, World, fixed_clock, generate

ADMIN = "/__sandbox"
REQUEST_LOG_LIMIT = 100_000
STATE_FORMAT = 1


class SandboxStateError(RexError):
    """The state file cannot be read, does not belong to this sandbox, or cannot be
    written. The message names the file and what to do."""


class _QuietServer(ThreadingHTTPServer):
    """A client that goes away mid-request (a deadline, a killed process) is no error."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class SandboxServer:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 7,
        scenario: str | Path | dict | None = None,
        token: str | None = None,
        now: datetime | Any = None,
        faults: FaultConfig | None = None,
        api_version_min: int = 24,
        app_secret: str | None = None,
        state_file: str | Path | None = None,
        report_seconds: float = 0.0,
    ) -> None:
        self.seed = seed
        # How long an async insights report runs before its polls move on (real time;
        # 0: it completes on its second poll). `state.reports_peak` counts how many ran
        # at once.
        self.report_seconds = report_seconds
        self.clock = fixed_clock(now)
        self.scenario: ScenarioSpec | None = load_scenario(scenario) if scenario else None
        self.initial_faults = faults or FaultConfig()
        self.faults = Faults(self.initial_faults)
        self.api_version_min = api_version_min
        self.app_secret = app_secret
        self.state_file = Path(state_file) if state_file is not None else None
        kept = self._load()
        self.token = token or (kept[1] if kept else None) or f"SANDBOX{secrets.token_urlsafe(24)}"
        self.state: World = kept[0] if kept else self._new_world()
        self._saved_revision = -1
        self.save()  # a new world, or a token given now: on disk before the first request
        self._http = _QuietServer((host, port), _handler_for(self))
        self._http.daemon_threads = True
        self.host, self.port = self._http.socket.getsockname()[:2]  # the port bound
        self.url = f"http://{self.host}:{self.port}"
        self.graph = self._new_graph()
        self._thread: threading.Thread | None = None

    @property
    def account_ids(self) -> list[str]:
        return sorted(self.state.accounts)

    # life cycle -------------------------------------------------------------------

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Back to the generated (or scenario) world; logs emptied, faults as configured;
        the state file (if any) rewritten with that world (the token stays)."""
        self.state = self._new_world()
        self.faults.configure(self.initial_faults)
        self.graph = self._new_graph()
        self._saved_revision = -1
        self.save()

    def set_faults(self, config: FaultConfig) -> None:
        self.faults.configure(config)

    def override_day(self, ad_id: str, day: date, numbers: Day) -> None:
        with self.state.lock:
            if ad_id not in self.state.entities:
                raise KeyError(ad_id)
            self.state.fixed_days[(ad_id, day)] = numbers
            self.state.touch()

    def advance(self, data: dict[str, Any]) -> dict[str, Any]:
        """Move the sandbox's clock forward: `{"advance_days": N}` or `{"to": "YYYY-MM-DD"}`
        (a date in UTC). The days that pass are generated from the state as it is now."""
        with self.state.lock:
            if "advance_days" in data:
                days = data["advance_days"]
                if not isinstance(days, int) or isinstance(days, bool) or days < 0:
                    raise ValueError("advance_days: give a whole number of days, 0 or more")
            elif "to" in data:
                try:
                    target = date.fromisoformat(str(data["to"]))
                except ValueError:
                    raise ValueError("to: give a date as YYYY-MM-DD") from None
                days = (target - self.state.clock().date()).days
                if days < 0:
                    raise ValueError(
                        f"to: {target} is before the sandbox's today "
                        f"({self.state.clock().date()}): its clock only moves forward"
                    )
            else:
                raise ValueError('give {"advance_days": N} or {"to": "YYYY-MM-DD"}')
            self.state.advance(days)
            return self.clock_now()

    def clock_now(self) -> dict[str, Any]:
        with self.state.lock:
            now = self.state.clock()
            return {
                "now": now.isoformat(),
                "advanced_days": self.state.advanced.days,
                "today": {a.id: a.today(now).isoformat() for a in self.state.accounts.values()},
            }

    def truth(self, adset_id: str, day: str | None = None) -> dict[str, Any]:
        """What the market expects of an ad set on a local day (yesterday by default): its
        totals and each segment's, before noise — what an estimate can be compared with."""
        with self.state.lock:
            adset = self.state.entities.get(adset_id)
            if adset is None or adset.level != "adset":
                raise KeyError(f"adset_id: {adset_id} is no ad set of the sandbox")
            account = self.state.accounts[adset.account_id]
            local = (
                date.fromisoformat(day)
                if day
                else account.today(self.state.clock()) - timedelta(days=1)
            )
            return self.state.truth(adset, local)

    def edit_as_person(self, object_id: str, **changes: Any) -> dict[str, Any]:
        """A person changes an object in Ads Manager (status, daily_budget, …): applied and
        in the change history, not in the write log. Raises GraphFailure when refused."""
        with self.state.lock:
            params = {k: str(v) for k, v in changes.items()}
            return self.graph._update(object_id, params, by_person=True)

    # the state file -------------------------------------------------------------

    def save(self) -> None:
        """Write the state file if anything changed since it was last written: a
        temporary file first (flushed to disk), then renamed over the old one, so the
        file is always either the old state or the new one, never half of each."""
        if self.state_file is None:
            return
        with self.state.lock:
            if self.state.revision == self._saved_revision:
                return
            text = json.dumps(
                {
                    "format": STATE_FORMAT,
                    "origin": self._origin(),
                    "token": self.token,
                    "world": self.state.to_state(),
                },
                separators=(",", ":"),
            )
            path = self.state_file
            temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                    handle.write(text)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, path)
            except OSError as error:
                with contextlib.suppress(OSError):
                    temporary.unlink()
                raise SandboxStateError(
                    f"the sandbox cannot write its state file {path} ({error.strerror or error}); "
                    "free disk space or fix the directory's permissions (or set REX_DATA_DIR "
                    "to a writable directory)"
                ) from None
            self._saved_revision = self.state.revision

    def _load(self) -> tuple[World, str | None] | None:
        """(world, token) from the state file, or None when there is none yet."""
        path = self.state_file
        if path is None or not path.exists():
            return None
        fix = (
            "move it away (or delete it) to start from the generated world — the sandbox's "
            "changes in it are then lost, so sync Rex afterwards — or restore it from a copy"
        )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
                raise ValueError(f"not a sandbox state file of format {STATE_FORMAT}")
            origin = data["origin"]
            world = World.from_state(data["world"], self.clock)
            token = data.get("token")
        except OSError as error:
            raise SandboxStateError(
                f"the sandbox cannot read its state file {path} ({error.strerror or error}); "
                "fix its permissions, or " + fix
            ) from None
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise SandboxStateError(
                f"the sandbox state file {path} is damaged or not a state file "
                f"({type(error).__name__}: {_one_line(str(error))}); " + fix
            ) from None
        if origin != self._origin():
            made = _origin_words(origin)
            raise SandboxStateError(
                f"the sandbox state file {path} holds a sandbox made from {made}, not from "
                f"{_origin_words(self._origin())}: start the sandbox as before (the same "
                "seed — REX_SANDBOX_SEED — and scenario), or " + fix
            )
        return world, token if isinstance(token, str) and token else None

    def _origin(self) -> dict[str, Any]:
        """What the world was made from: a state file belongs to one seed and scenario."""
        scenario = (
            hashlib.sha256(self.scenario.model_dump_json().encode()).hexdigest()[:16]
            if self.scenario is not None
            else None
        )
        return {"seed": self.seed, "scenario": scenario}

    # internals --------------------------------------------------------------------

    def _new_world(self) -> World:
        if self.scenario is not None:
            return build_world(self.scenario, self.seed, self.clock)
        return generate(self.seed, self.clock)

    def _new_graph(self) -> Graph:
        return Graph(
            self.state,
            self.faults,
            token=self.token,
            base_url=getattr(self, "url", ""),
            api_version_min=self.api_version_min,
            app_secret=self.app_secret,
            report_seconds=self.report_seconds,
        )

    def summary(self) -> dict[str, Any]:
        with self.state.lock:
            return {
                "accounts": [
                    {
                        "id": a.id,
                        "name": a.name,
                        "currency": a.currency,
                        "timezone": a.timezone_name,
                    }
                    for a in self.state.accounts.values()
                ],
                "entities": [
                    {
                        "id": e.id,
                        "level": e.level,
                        "account_id": e.account_id,
                        "name": e.name,
                        "status": e.status,
                        "effective_status": self.state.effective_status(e),
                        "campaign_id": e.campaign_id,
                        "adset_id": e.adset_id,
                        "daily_budget": e.daily_budget,
                        "lifetime_budget": e.lifetime_budget,
                        **({"expected_yesterday": self._expected(e)} if e.level == "adset" else {}),
                    }
                    for e in sorted(self.state.entities.values(), key=lambda e: e.id)
                ],
                "now": self.state.clock().isoformat(),
                "advanced_days": self.state.advanced.days,
            }

    def _expected(self, adset: Any) -> dict[str, Any]:
        """What the market expects of an ad set yesterday (its segments: `GET truth`)."""
        account = self.state.accounts[adset.account_id]
        day = account.today(self.state.clock()) - timedelta(days=1)
        expected = self.state.expected_adset(adset, day)
        return {
            "date": day.isoformat(),
            "spend": round(expected.spend, 2),
            "purchases": round(expected.purchases, 2),
            "revenue": round(expected.revenue, 2),
            "roas": None if expected.roas is None else round(expected.roas, 3),
            "learning": expected.learning,
        }


def _handler_for(server: SandboxServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "RexSandbox/1.0"

        def log_message(self, *_args: Any) -> None:  # quiet; the request log has it
            pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            params = dict(parse_qsl(parts.query, keep_blank_values=True))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if parts.path.startswith(ADMIN):
                if not ipaddress.ip_address(self.client_address[0]).is_loopback:
                    self._send(403, {"error": {"message": "admin calls only from loopback"}}, {})
                    return
                self._admin(method, parts.path[len(ADMIN) :].strip("/"), raw, params)
                return
            content_type = self.headers.get("Content-Type", "")
            if raw and "json" in content_type:
                with contextlib.suppress(ValueError, AttributeError):
                    params.update({k: _as_param(v) for k, v in json.loads(raw).items()})
            elif raw:
                params.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
            latency = server.faults.config.latency_ms
            if latency:
                time.sleep(latency / 1000)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, body = server.graph.handle(method, parts.path, params, headers)
            if method != "GET":
                try:
                    server.save()  # what the client is told happened is on disk first
                except SandboxStateError as error:
                    status, extra, body = 500, {}, _unsaved(error)
            with server.state.lock:
                server.state.request_log.append(
                    {
                        "method": method,
                        "path": parts.path,
                        "status": status,
                        "params": sorted(k for k in params if k != "access_token"),
                        "at": server.state.clock().isoformat(),
                        **({"batch": _batch_methods(params["batch"])} if "batch" in params else {}),
                    }
                )
                if len(server.state.request_log) > REQUEST_LOG_LIMIT:  # a long demo run
                    del server.state.request_log[: REQUEST_LOG_LIMIT // 10]
            self._send(status, body, extra)

        def _admin(self, method: str, action: str, raw: bytes, query: dict[str, str]) -> None:
            try:
                data = json.loads(raw) if raw else dict(query)
                status, body = 200, _admin(server, method, action, data)
                if method != "GET":
                    server.save()
            except (ValueError, KeyError, TypeError, MoneyError) as error:
                status, body = 400, {"error": {"message": str(error)}}
            except SandboxStateError as error:
                status, body = 500, _unsaved(error)
            self._send(status, body, {})

        def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
            if isinstance(body, RawAnswer):
                payload, content_type = body.text.encode(), body.content_type
            else:
                payload, content_type = json.dumps(body).encode(), "application/json; charset=UTF-8"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def _unsaved(error: SandboxStateError) -> dict[str, Any]:
    """A Graph error a client reads as transient (it may have been applied in memory)."""
    return {
        "error": {
            "message": str(error),
            "type": "SandboxStateError",
            "code": 2,
            "is_transient": True,
        }
    }


def _origin_words(origin: Any) -> str:
    if not isinstance(origin, dict):
        return "an unknown origin"
    words = f"seed {origin.get('seed')}"
    return words + (" and a scenario file" if origin.get("scenario") else "")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200] or "no detail"


def _batch_methods(raw: str) -> list[str]:
    """The method of each item of a batch request, for the request log."""
    try:
        items = json.loads(raw)
    except ValueError:
        return []
    return (
        [str(i.get("method", "GET")) for i in items if isinstance(i, dict)]
        if isinstance(items, list)
        else []
    )


def _as_param(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _admin(server: SandboxServer, method: str, action: str, data: dict) -> Any:
    world = server.state
    if action == "writes" and method == "GET":
        with world.lock:
            return [w.as_dict() for w in world.write_log]
    if action == "requests" and method == "GET":
        with world.lock:
            return list(world.request_log)
    if action == "faults":
        if method == "POST":
            server.set_faults(FaultConfig.from_json(data))
        return {
            **server.faults.config.to_json(),
            "pending": server.faults.pending(),
            "injected": dict(server.faults.injected),
        }
    if action == "activities" and method == "GET":
        with world.lock:
            return [
                {
                    "event_time": a.event_time.isoformat(),
                    "event_type": a.event_type,
                    "object_id": a.object_id,
                    "application_id": a.application[0],
                    "extra_data": a.extra_data,
                }
                for a in world.activities
            ]
    if action == "edit" and method == "POST":
        # A person changing an object in Ads Manager: applied, in the change history under
        # Ads Manager, not in the write log (which holds what API clients sent).
        object_id = str(data.pop("object_id"))
        try:
            return server.edit_as_person(object_id, **data)
        except GraphFailure as failure:
            raise ValueError(failure.body["message"]) from None
    if action == "reset" and method == "POST":
        server.reset()
        return {"reset": True, "accounts": server.account_ids}
    if action == "state" and method == "GET":
        return server.summary()
    if action == "clock" and method == "POST":
        return server.advance(data)
    if action == "clock" and method == "GET":
        return server.clock_now()
    if action == "truth" and method == "GET":
        return server.truth(str(data["adset_id"]), data.get("date"))
    if action == "insights" and method == "POST":
        ad_id = str(data["ad_id"])
        entity = world.entities[ad_id]
        currency = world.accounts[entity.account_id].currency
        numbers = Day(
            spend=to_minor(str(data.get("spend", 0)), currency),
            impressions=int(data.get("impressions", 0)),
            clicks=int(data.get("clicks", 0)),
            reach=int(data.get("reach", 0)),
            purchases=int(data.get("purchases", 0)),
            revenue=to_minor(str(data.get("purchase_value", data.get("revenue", 0))), currency),
        )
        if "days_ago" in data:
            today = world.accounts[entity.account_id].today(world.clock())
            day = today - timedelta(days=int(data["days_ago"]))
        else:
            day = date.fromisoformat(data["date"])
        server.override_day(ad_id, day, numbers)
        return {"ok": True}
    raise KeyError(f"unknown admin call {method} {ADMIN}/{action}")


def run_server(
    host: str = "127.0.0.1",
    port: int = 8765,
    seed: int = 7,
    scenario: str | None = None,
    token: str | None = None,
    faults: FaultConfig | None = None,
    state_file: str | Path | None = None,
) -> None:
    """Serve until SIGTERM / SIGINT. The first stdout line announces the server as JSON.
    With `state_file`, the state is kept there across restarts (see the module's doc);
    SandboxStateError when it cannot be read."""
    server = SandboxServer(host, port, seed, scenario, token, None, faults, state_file=state_file)
    stop = threading.Event()

    def _stop(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server.start()
    announcement = {
        "graph_url": server.url,
        "token": server.token,
        "accounts": server.account_ids,
        "admin_url": f"{server.url}{ADMIN}",
    }
    sys.stdout.write(json.dumps(announcement) + "\n")
    sys.stdout.flush()
    stop.wait()
    server.stop()
