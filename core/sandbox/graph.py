"""The Graph API as the sandbox answers it: routing, reads, insights, writes, batch.

`Graph.handle(method, path, params, headers)` → `(status, headers, body)`; the HTTP
server (server.py) only decodes requests and encodes answers. Shapes follow
the team's GRAPH_API_NOTES.md: `{"data", "paging"}` pages with opaque cursors, errors as
`{"error": {message, type, code, error_subcode, fbtrace_id, …}}` (HTTP 400 mostly),
usage headers on every answer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from core.meta.objects import ON_META_ONLY_BREAKDOWNS
from core.money import decimals, offset
from core.sandbox.faults import (
    LOST_HTML,
    RATE_LIMIT_KINDS,
    Faults,
    error_body,
    rate_limit_headers,
)
from core.sandbox.targeting import TargetingRefused, check_schedule, check_spec
from core.sandbox.world import (
    HISTORY_DAYS,
    SANDBOX_APP,
    STATE_FIELDS,
    SUPPORTED_BREAKDOWNS,
    Account,
    Activity,
    Day,
    Entity,
    World,
    date_range,
    meta_time,
)

Answer = tuple[int, dict[str, str], Any]


@dataclass(frozen=True)
class RawAnswer:
    """A body that is not JSON (an HTML error page from a proxy in front of Meta)."""

    text: str
    content_type: str = "text/html; charset=UTF-8"


EDGES = {"campaigns": "campaign", "adsets": "adset", "ads": "ad"}
DEFAULT_EDGE_LIMIT = 25
MAX_LIMIT = 5000
BATCH_LIMIT = 50
HIDDEN = ("ARCHIVED", "DELETED")
DEFAULT_VERSION = "v26.0"
LEVELS = ("account", "campaign", "adset", "ad")
FILTER_OPERATORS = ("IN", "NOT_IN", "EQUAL")
COPY_CHILD_LIMIT = 3
BUDGET_CHANGES_PER_HOUR = 4


class GraphFailure(Exception):
    """An error answer, raised anywhere in a handler."""

    def __init__(
        self,
        message: str,
        code: int = 100,
        *,
        subcode: int | None = None,
        status: int = 400,
        user_title: str | None = None,
        user_msg: str | None = None,
        blame: str | None = None,
        error_type: str = "OAuthException",
    ) -> None:
        super().__init__(message)
        self.body: dict[str, Any] = {"message": message, "type": error_type, "code": code}
        if subcode:
            self.body["error_subcode"] = subcode
        if user_title:
            self.body["error_user_title"] = user_title
        if user_msg:
            self.body["error_user_msg"] = user_msg
        if blame:
            self.body["error_data"] = json.dumps({"blame_field_specs": [[blame]]})
        self.status = status


def _gone(object_id: str) -> GraphFailure:
    return GraphFailure(
        f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation.",
        100,
        subcode=33,
        error_type="GraphMethodException",
    )


class Graph:
    def __init__(
        self,
        world: World,
        faults: Faults,
        *,
        token: str,
        base_url: str,
        api_version_min: int,
        app_secret: str | None,
        report_seconds: float = 0.0,
    ) -> None:
        self.world = world
        self.faults = faults
        self.token = token
        self.base_url = base_url
        self.api_version_min = api_version_min
        self.app_secret = app_secret
        self.report_seconds = report_seconds  # an async report's run time (real seconds)
        self._version = DEFAULT_VERSION

    # ------------------------------------------------------------------ entry

    def handle(self, method: str, path: str, params: dict[str, str], headers: dict) -> Answer:
        trace_id = secrets.token_urlsafe(8)
        parts = [p for p in path.split("/") if p]
        version = parts.pop(0) if parts and _is_version(parts[0]) else None
        try:
            self._check_version(version)
            self._check_token(params, headers)
            fault = self.faults.draw()
            if self.faults.config.expired_token:
                fault = "token"
            if fault:
                return self._fault(fault, parts, trace_id)
            with self.world.lock:
                self._version = version or DEFAULT_VERSION  # for paging.next (under the lock)
                body = self._route(method.upper(), parts, params, version)
            if method.upper() == "POST":
                lost = self.faults.draw(among=("lost_5xx", "lost_success"))
                if lost == "lost_5xx" or (lost and not parts):  # a batch: the whole answer
                    return 502, {}, RawAnswer(LOST_HTML)
                if lost == "lost_success":
                    return 200, self._usage_headers(parts), {"success": "true"}
            return 200, self._usage_headers(parts), body
        except GraphFailure as failure:
            body = {"error": {**failure.body, "fbtrace_id": trace_id}}
            return failure.status, self._usage_headers(parts), body

    def _check_version(self, version: str | None) -> None:
        if version is None:
            return
        major = int(version[1:].split(".")[0])
        if major < self.api_version_min:
            raise GraphFailure(
                f"(#2635) You are calling a deprecated version of the Ads API. Please update "
                f"to the latest version: v{self.api_version_min + 2}.0.",
                2635,
            )

    def _check_token(self, params: dict[str, str], headers: dict) -> None:
        token = params.get("access_token")
        auth = headers.get("authorization") or ""
        if not token and auth.split(" ", 1)[0].lower() in ("bearer", "oauth"):
            token = auth.split(" ", 1)[1].strip()
        if not token:
            # Meta says 104 here; the sandbox says 190 so a client treats it as "reconnect".
            raise GraphFailure("An access token is required to request this resource.", 190)
        if not hmac.compare_digest(token, self.token):
            raise GraphFailure("Invalid OAuth access token - Cannot parse access token", 190)
        if self.app_secret:
            proof = params.get("appsecret_proof")
            expected = hmac.new(self.app_secret.encode(), token.encode(), hashlib.sha256)
            if not proof:
                raise GraphFailure(
                    "API calls from the server require an appsecret_proof argument", 100
                )
            if not hmac.compare_digest(proof, expected.hexdigest()):
                raise GraphFailure("Invalid appsecret_proof provided in the API argument", 100)

    def _fault(self, kind: str, parts: list[str], trace_id: str) -> Answer:
        status, body = error_body(kind, trace_id)
        headers = self._usage_headers(parts)
        if kind in RATE_LIMIT_KINDS:
            account = self.world.account_of(parts[0]) if parts else None
            headers.update(
                rate_limit_headers(
                    kind,
                    account.numeric_id if account else None,
                    self.faults.config.regain_minutes,
                )
            )
        return status, headers, body

    def _usage_headers(self, parts: list[str]) -> dict[str, str]:
        account = self.world.account_of(parts[0]) if parts else None
        usage = {"X-App-Usage": json.dumps({"call_count": 2, "total_cputime": 1, "total_time": 1})}
        usage["X-Ad-Account-Usage"] = json.dumps({"acc_id_util_pct": 0, "reset_time_duration": 0})
        usage["X-Business-Use-Case-Usage"] = "{}"
        if account:
            usage["X-Ad-Account-Usage"] = json.dumps(
                {
                    "acc_id_util_pct": 3,
                    "reset_time_duration": 0,
                    "ads_api_access_tier": "standard_access",
                }
            )
            usage["X-Business-Use-Case-Usage"] = json.dumps(
                {
                    account.numeric_id: [
                        {
                            "type": "ads_management",
                            "call_count": 2,
                            "total_cputime": 1,
                            "total_time": 1,
                            "estimated_time_to_regain_access": 0,
                        }
                    ]
                }
            )
        return usage

    # ---------------------------------------------------------------- routing

    def _route(
        self, method: str, parts: list[str], params: dict[str, str], version: str | None
    ) -> Any:
        if not parts:
            if method == "POST" and "batch" in params:
                return self._batch(params, version)
            raise GraphFailure("Unsupported request: POST / needs a batch parameter", 100)
        object_id = parts[0]
        edge = parts[1] if len(parts) > 1 else None
        if len(parts) > 2:
            raise GraphFailure(f"Unknown path components: /{'/'.join(parts[2:])}", 2500)
        if method == "GET":
            if object_id == "app" and edge is None:
                return {"id": SANDBOX_APP[0], "name": SANDBOX_APP[1]}
            if edge is None:
                return self._read_object(object_id, params)
            if edge in EDGES:
                return self._edge(object_id, EDGES[edge], params)
            if edge == "insights":
                return self._insights_page(object_id, params)
            if edge == "activities":
                return self._activities(object_id, params)
        elif method == "POST":
            if edge is None:
                return self._update(object_id, params)
            if edge == "copies":
                return self._copy(object_id, params)
            if edge == "insights":
                return self._start_report(object_id, params)
        elif method == "DELETE" and edge is None:
            return self._update(object_id, {"status": "DELETED"})
        raise GraphFailure(f"Unsupported {method} request to /{'/'.join(parts)}", 100)

    # ------------------------------------------------------------------ reads

    def _read_object(self, object_id: str, params: dict[str, str]) -> dict[str, Any]:
        fields = _fields(params)
        if object_id in self.world.accounts:
            return self._account_json(self.world.accounts[object_id], fields)
        if object_id in self.world.entities:
            return self._entity_json(self.world.entities[object_id], fields)
        if object_id in self.world.reports:
            return self._report_status(object_id)
        raise _gone(object_id)

    def _account_json(self, account: Account, fields: list[str]) -> dict[str, Any]:
        spent = sum(
            self.world.day(ad, day).spend
            for ad in self.world.children(account.id, "ad")
            for day in date_range(
                account.today(self.world.clock()) - timedelta(days=HISTORY_DAYS - 1),
                account.today(self.world.clock()),
            )
        )
        now = self.world.clock()
        offset_hours = now.astimezone(ZoneInfo(account.timezone_name)).utcoffset()
        values = {
            "id": account.id,
            "account_id": account.numeric_id,
            "name": account.name,
            "currency": account.currency,
            "timezone_name": account.timezone_name,
            "timezone_offset_hours_utc": _hours(
                offset_hours.total_seconds() if offset_hours else 0
            ),
            "account_status": account.account_status,
            "min_daily_budget": account.min_daily_budget,
            "amount_spent": str(spent),
            "business_name": "Rex Sandbox",
        }
        return _pick(values, fields or ["id"])

    def _entity_json(self, entity: Entity, fields: list[str]) -> dict[str, Any]:
        tz = self.world.accounts[entity.account_id].timezone_name
        values: dict[str, Any] = {
            "id": entity.id,
            "name": entity.name,
            "status": entity.status,
            "configured_status": entity.status,
            "effective_status": self.world.effective_status(entity),
            "account_id": entity.account_id.removeprefix("act_"),
            "created_time": meta_time(entity.created_time, tz),
            "updated_time": meta_time(entity.updated_time, tz),
        }
        if entity.level in ("adset", "ad"):
            values["campaign_id"] = entity.campaign_id
        if entity.level == "ad":
            values["adset_id"] = entity.adset_id
        if entity.level in ("campaign", "adset"):
            values["daily_budget"] = str(entity.daily_budget or 0)
            values["lifetime_budget"] = str(entity.lifetime_budget or 0)
            values["budget_remaining"] = str(
                max(0, (entity.daily_budget or entity.lifetime_budget or 0) - 0)
            )
        if entity.level == "campaign":
            values["objective"] = entity.objective
            values["special_ad_categories"] = list(entity.special_ad_categories)
        if entity.level == "adset" and entity.bid_amount is not None:
            values["bid_amount"] = entity.bid_amount
        if entity.level == "adset":
            if entity.targeting is not None:
                values["targeting"] = entity.targeting
            if entity.adset_schedule:
                values["adset_schedule"] = entity.adset_schedule
                values["pacing_type"] = ["day_parting"]
            if entity.end_time is not None:
                values["end_time"] = meta_time(entity.end_time, tz)
        return _pick(values, fields or ["id"])

    def _edge(self, owner_id: str, level: str, params: dict[str, str]) -> dict[str, Any]:
        if owner_id not in self.world.accounts and owner_id not in self.world.entities:
            raise _gone(owner_id)
        statuses = _json_list(params.get("effective_status"), "effective_status")
        items = []
        for entity in self.world.children(owner_id, level):
            effective = self.world.effective_status(entity)
            if effective == "DELETED" or entity.status == "DELETED":
                continue  # deleted objects never come back from edges
            if statuses is not None:
                if effective not in statuses:
                    continue
            elif effective in HIDDEN:
                continue
            items.append(entity)
        fields = _fields(params)
        edge = next(name for name, lvl in EDGES.items() if lvl == level)
        page = self._page([self._entity_json(e, fields) for e in items], params, owner_id, edge)
        if params.get("summary") in ("true", "1", "total_count"):
            page["summary"] = {"total_count": len(items)}
        return page

    def _page(self, items: list[Any], params: dict[str, str], *path: str) -> dict[str, Any]:
        """One page of `items`: `after` / `before` cursors, `next` / `previous` links."""
        limit = _int(params.get("limit"), "limit", DEFAULT_EDGE_LIMIT, low=1, high=MAX_LIMIT)
        if params.get("after"):
            start = min(_cursor(params["after"], "after"), len(items))
        elif params.get("before"):
            start = max(0, _cursor(params["before"], "before") - limit)
        else:
            start = 0
        chunk = items[start : start + limit]
        end = start + len(chunk)
        page: dict[str, Any] = {"data": chunk}
        if not items:
            return page
        cursors = {"before": _encode_cursor(start), "after": _encode_cursor(end)}
        page["paging"] = {"cursors": cursors}
        query = {
            k: v
            for k, v in params.items()
            if k not in ("access_token", "appsecret_proof", "after", "before")
        }
        base = f"{self.base_url}/{self._version}/{'/'.join(p for p in path if p)}"
        if end < len(items):
            page["paging"]["next"] = f"{base}?{urlencode({**query, 'after': _encode_cursor(end)})}"
        if start > 0:
            before = urlencode({**query, "before": _encode_cursor(start)})
            page["paging"]["previous"] = f"{base}?{before}"
        return page

    # ------------------------------------------------------------- activities

    def _activities(self, owner_id: str, params: dict[str, str]) -> dict[str, Any]:
        """The change history, newest first: an account's, or one object's (and, for a
        campaign or ad set, its children's). `since` / `until` are unix times or ISO."""
        account = self.world.account_of(owner_id)
        if account is None:
            raise _gone(owner_id)
        since = _instant(params.get("since"), "since")
        until = _instant(params.get("until"), "until")
        if since is None:
            since = self.world.clock() - timedelta(days=7)  # Meta's default: one week
        owner = self.world.entities.get(owner_id)
        items = []
        for activity in reversed(self.world.activities):
            if activity.account_id != account.id or activity.event_time < since:
                continue
            if until is not None and activity.event_time > until:
                continue
            if owner is not None and activity.object_id != owner.id:
                entity = self.world.entities.get(activity.object_id)
                if entity is None or owner.id not in (entity.campaign_id, entity.adset_id):
                    continue
            items.append(self._activity_json(activity, account, _fields(params)))
        return self._page(items, params, owner_id, "activities")

    def _activity_json(
        self, activity: Activity, account: Account, fields: list[str]
    ) -> dict[str, Any]:
        values = {
            "event_time": meta_time(activity.event_time, account.timezone_name),
            "event_type": activity.event_type,
            "translated_event_type": activity.event_type.replace("_", " ").capitalize(),
            "object_id": activity.object_id,
            "object_name": activity.object_name,
            "object_type": activity.object_type,
            "application_id": activity.application[0],
            "application_name": activity.application[1],
            "actor_id": activity.actor[0],
            "actor_name": activity.actor[1],
            "date_time_in_timezone": activity.event_time.astimezone(
                ZoneInfo(account.timezone_name)
            ).strftime("%m/%d/%Y at %I:%M %p"),
            "extra_data": json.dumps(activity.extra_data, separators=(",", ":")),
        }
        default = ["event_time", "event_type"]
        return {k: values[k] for k in (fields or default) if k in values}

    # --------------------------------------------------------------- insights

    def _insights_page(self, object_id: str, params: dict[str, str]) -> dict[str, Any]:
        if object_id in self.world.reports:
            report = self.world.reports[object_id]
            if report["status"] != "Job Completed":
                raise GraphFailure(f"Report {object_id} is not ready: {report['status']}", 100)
            return self._page(report["rows"], params, object_id, "insights")
        rows = self._insight_rows(object_id, params)
        return self._page(rows, params, object_id, "insights")

    def _start_report(self, object_id: str, params: dict[str, str]) -> dict[str, Any]:
        rows = self._insight_rows(object_id, params)
        run_id = self.world.new_id()
        account = self.world.account_of(object_id)
        since, until = self._time_range(account, params) if account else (None, None)
        # Every report shows "Job Running" at 100 % once before it completes (Meta's trap:
        # 100 % is not done); a slow one (fault `async_slow`) first reads "Job Not Started".
        steps = [("Job Running", 100)]
        if self.faults.draw(special="async_slow"):
            steps = [("Job Not Started", 0), ("Job Running", 45), *steps]
        self.world.reports[run_id] = {
            "rows": rows,
            "polls": 0,
            "steps": steps,
            "status": "Job Not Started",
            "fail": self.faults.draw(special="async_fail") is not None,
            "account_id": account.numeric_id if account else "",
            "since": since,
            "until": until,
            "started": time.monotonic(),
        }
        self.world.reports_running += 1
        self.world.reports_peak = max(self.world.reports_peak, self.world.reports_running)
        return {"report_run_id": run_id}

    def _report_status(self, run_id: str) -> dict[str, Any]:
        """Each poll moves the job one step on: the steps, then completed (or failed).
        With `report_seconds`, the job first runs that long (real time), its percentage
        growing; polls meanwhile move no step on."""
        report = self.world.reports[run_id]
        elapsed = time.monotonic() - report["started"]
        steps = report["steps"]
        if elapsed < self.report_seconds:
            status, percent = "Job Running", min(99, int(100 * elapsed / self.report_seconds))
        elif report["polls"] < len(steps):
            status, percent = steps[report["polls"]]
            report["polls"] += 1
        elif report["fail"]:
            status, percent = "Job Failed", 100
        else:
            status, percent = "Job Completed", 100
        if status in ("Job Completed", "Job Failed") and report["status"] != status:
            self.world.reports_running -= 1  # ended now
        report["status"] = status
        return {
            "id": run_id,
            "account_id": report["account_id"],
            "async_status": status,
            "async_percent_completion": percent,
            "date_start": report["since"].isoformat() if report["since"] else "",
            "date_stop": report["until"].isoformat() if report["until"] else "",
        }

    def _insight_rows(self, object_id: str, params: dict[str, str]) -> list[dict[str, Any]]:
        account = self.world.account_of(object_id)
        if account is None:
            raise _gone(object_id)
        owner = self.world.entities.get(object_id)
        level = params.get("level") or (owner.level if owner else "account")
        if level not in ("account", "campaign", "adset", "ad"):
            raise GraphFailure(
                "level must be one of account, campaign, adset, ad", 100, blame="level"
            )
        since, until = self._time_range(account, params)
        breakdowns = tuple(_json_list(params.get("breakdowns"), "breakdowns") or ())
        if breakdowns and breakdowns not in SUPPORTED_BREAKDOWNS:
            raise GraphFailure(
                f"(#100) Current combination of data breakdown columns ({', '.join(breakdowns)}) "
                "is invalid",
                100,
                blame="breakdowns",
            )
        on_meta_only = not ON_META_ONLY_BREAKDOWNS.isdisjoint(breakdowns)
        daily = str(params.get("time_increment", "all_days")) == "1"
        fields = _fields(params) or ["spend", "impressions"]
        ads = [owner] if owner and owner.level == "ad" else self.world.children(object_id, "ad")
        ads = [ad for ad in ads if self._passes(ad, params.get("filtering"))]

        sums: dict[tuple, Day] = {}
        for ad in ads:
            group = self._group(ad, level, account)
            for day in date_range(since, until):
                parts = (
                    self.world.segment_days(ad, day, breakdowns)
                    if breakdowns
                    else [((), self.world.day(ad, day))]
                )
                for segment, numbers in parts:
                    if numbers.is_empty():
                        continue
                    key = (day if daily else since, tuple(group.items()), segment)
                    sums[key] = sums.get(key, Day(0, 0, 0, 0, 0, 0)) + numbers
        rows = []
        for (day, group, segment), numbers in sorted(sums.items(), key=lambda kv: str(kv[0])):
            row: dict[str, Any] = {}
            for name, value in group:
                if name in fields:
                    row[name] = value
            row.update(_metrics_json(numbers, account.currency, fields, on_meta_only=on_meta_only))
            row.update(dict(zip(breakdowns, segment, strict=True)))
            row["date_start"] = day.isoformat()
            row["date_stop"] = (day if daily else until).isoformat()
            rows.append(row)
        return rows

    def _group(self, ad: Entity, level: str, account: Account) -> dict[str, str]:
        """The id and name columns of a row at `level` (the row's grouping key)."""
        ids = {"account_id": account.numeric_id, "account_name": account.name}
        ids["account_currency"] = account.currency
        for name in ("campaign", "adset", "ad")[: LEVELS.index(level)]:
            entity = self.world.entities[ad.id if name == "ad" else getattr(ad, f"{name}_id")]
            ids[f"{name}_id"] = entity.id
            ids[f"{name}_name"] = entity.name
        return ids

    def _passes(self, ad: Entity, raw: str | None) -> bool:
        """Insights `filtering`: [{"field": "campaign.id", "operator": "IN", "value": [...]}]
        on `{campaign|adset|ad}.id` and `.effective_status` (IN, NOT_IN, EQUAL)."""
        for rule in _json_list(raw, "filtering") or []:
            try:
                level, attribute = str(rule["field"]).split(".", 1)
                operator, value = str(rule["operator"]).upper(), rule["value"]
                entity = self.world.entities[ad.id if level == "ad" else getattr(ad, f"{level}_id")]
            except (KeyError, ValueError, TypeError, AttributeError):
                raise GraphFailure(
                    "(#100) filtering items are {field: campaign|adset|ad.id|effective_status, "
                    "operator, value}",
                    100,
                    blame="filtering",
                ) from None
            if attribute not in ("id", "effective_status") or operator not in FILTER_OPERATORS:
                raise GraphFailure(
                    f"(#100) filtering on {rule['field']} {operator} is not supported by the "
                    "sandbox",
                    100,
                    blame="filtering",
                )
            actual = entity.id if attribute == "id" else self.world.effective_status(entity)
            wanted = {str(v) for v in value} if isinstance(value, list) else {str(value)}
            if (actual in wanted) == (operator == "NOT_IN"):
                return False
        return True

    def _time_range(self, account: Account, params: dict[str, str]) -> tuple[date, date]:
        today = account.today(self.world.clock())
        if params.get("time_range"):
            try:
                value = json.loads(params["time_range"])
                since = date.fromisoformat(value["since"])
                until = date.fromisoformat(value["until"])
            except (ValueError, KeyError, TypeError):
                raise GraphFailure(
                    'time_range must be {"since": "YYYY-MM-DD", "until": "YYYY-MM-DD"}',
                    100,
                    blame="time_range",
                ) from None
            if since > until:
                raise GraphFailure(
                    "time_range: since must not be after until", 100, blame="time_range"
                )
            return since, until
        preset = params.get("date_preset", "last_30d")
        if preset == "today":
            return today, today
        if preset == "yesterday":
            return today - timedelta(days=1), today - timedelta(days=1)
        if preset == "maximum":
            return today - timedelta(days=HISTORY_DAYS - 1), today
        if preset == "this_month":
            return today.replace(day=1), today
        if preset == "last_month":
            last = today.replace(day=1) - timedelta(days=1)
            return last.replace(day=1), last
        if preset.startswith("last_") and preset.endswith("d") and preset[5:-1].isdigit():
            days = int(preset[5:-1])
            return today - timedelta(days=days), today - timedelta(days=1)
        raise GraphFailure(
            f"date_preset {preset!r} is not supported by the sandbox", 100, blame="date_preset"
        )

    # ----------------------------------------------------------------- writes

    def _update(
        self, object_id: str, params: dict[str, str], *, by_person: bool = False
    ) -> dict[str, Any]:
        """Change status, budget or name. `by_person`: an edit in Ads Manager (the admin
        endpoint `edit`), in the change history under another application and not in the
        write log, which holds only what API clients sent."""
        entity = self.world.entities.get(object_id)
        if entity is None:
            if object_id in self.world.accounts:
                raise GraphFailure("(#3) Application does not have the capability", 3)
            raise _gone(object_id)
        changes: dict[str, Any] = {}
        if "status" in params:
            status = params["status"]
            if status not in ("ACTIVE", "PAUSED", "ARCHIVED", "DELETED"):
                raise GraphFailure(
                    "(#100) Param status must be one of {ACTIVE, PAUSED, DELETED, ARCHIVED}",
                    100,
                    blame="status",
                )
            if entity.status == "DELETED":
                raise _gone(object_id)
            changes["status"] = status
        for kind in ("daily_budget", "lifetime_budget"):
            if kind in params:
                changes[kind] = self._check_budget(entity, kind, params[kind])
        if "name" in params:
            changes["name"] = params["name"]
        changes.update(self._targeting_changes(entity, params, changes))
        if not changes:
            raise GraphFailure("(#100) No fields to update were given", 100)
        if any(k.endswith("_budget") for k in changes):
            self._count_budget_change(entity)
        currency = self.world.accounts[entity.account_id].currency
        changed = False
        for key, value in changes.items():
            old = getattr(entity, key)
            setattr(entity, key, value)
            if old == value:
                continue  # Meta's history lists changes, not calls that changed nothing
            changed = True
            if key in STATE_FIELDS:
                self.world.record_change(entity, key, old, value)  # the market follows it
            what = "budget" if key.endswith("_budget") else key
            extra: dict[str, Any] = {
                "old_value": _plain_value(old),
                "new_value": _plain_value(value),
            }
            if what == "budget":
                extra.update(type=key, currency=currency)
            self.world.log_activity(entity, what, extra, by_person=by_person)
        if changed:
            entity.updated_time = self.world.clock()
        result = {"success": True}
        if not by_person:
            self.world.log_write("POST", object_id, object_id, params, result, changed=changed)
        return result

    def _targeting_changes(
        self, entity: Entity, params: dict[str, str], changes: dict[str, Any]
    ) -> dict[str, Any]:
        """`targeting` (the whole spec: it replaces the old one), `end_time` and
        `adset_schedule` (dayparting: a lifetime budget and an end time needed), checked
        as Meta checks them."""
        found: dict[str, Any] = {}
        wanted = [k for k in ("targeting", "end_time", "adset_schedule") if k in params]
        if wanted and entity.level != "adset":
            raise GraphFailure(f"(#100) Only ad sets have {wanted[0]}", 100, blame=wanted[0])
        if "targeting" in params:
            campaign = self.world.entities.get(entity.campaign_id or "")
            categories = campaign.special_ad_categories if campaign else []
            found["targeting"] = _refusing(
                lambda spec: check_spec(spec, special_ad_categories=categories),
                _json_object(params["targeting"], "targeting"),
            )
        if "end_time" in params:
            try:
                end = datetime.fromisoformat(params["end_time"].replace("Z", "+00:00"))
            except ValueError:
                end = None
            if end is None or end.tzinfo is None:
                raise GraphFailure(
                    "(#100) Param end_time must be a time with its offset, e.g. "
                    "2026-12-31T23:59:00-0800",
                    100,
                    blame="end_time",
                )
            found["end_time"] = end.astimezone(UTC)
        if "adset_schedule" in params:
            try:
                raw_schedule = json.loads(params["adset_schedule"] or "null")
            except ValueError:
                raw_schedule = None
            schedule = _refusing(check_schedule, raw_schedule)
            pacing = _json_list(params.get("pacing_type"), "pacing_type") or []
            if "day_parting" not in pacing:
                raise GraphFailure(
                    '(#100) Param adset_schedule needs pacing_type ["day_parting"]',
                    100,
                    blame="pacing_type",
                )
            if not changes.get("lifetime_budget", entity.lifetime_budget):
                raise GraphFailure(
                    "(#100) Invalid parameter: ad scheduling (dayparting) is only available for "
                    "ad sets with a lifetime budget",
                    100,
                    blame="adset_schedule",
                    user_title="Lifetime Budget Required",
                )
            if not found.get("end_time", entity.end_time):
                raise GraphFailure(
                    "(#100) Invalid parameter",
                    100,
                    subcode=1885407,
                    blame="end_time",
                    user_title="Schedule End Date Required",
                    user_msg="An ad set with a schedule needs an end date.",
                )
            found["adset_schedule"] = schedule
        return found

    def _check_budget(self, entity: Entity, kind: str, raw: str) -> int:
        account = self.world.accounts[entity.account_id]
        if entity.level == "ad":
            raise GraphFailure(f"(#100) Ads have no {kind}", 100, blame=kind)
        if not raw.isdigit():
            raise GraphFailure(
                f"(#100) {kind} must be an integer in the currency's minimum unit",
                100,
                blame=kind,
            )
        amount = int(raw)
        campaign = self.world.entities.get(entity.campaign_id or "")
        cbo = campaign is not None and bool(campaign.daily_budget or campaign.lifetime_budget)
        if entity.level == "adset" and cbo:
            raise GraphFailure(
                "Invalid parameter",
                100,
                subcode=1885621,
                user_title="Can't Set Ad Set Budget",
                user_msg="You can't set an ad set budget because this campaign uses a campaign "
                "budget (Advantage campaign budget). Change the campaign's budget instead.",
                blame=kind,
            )
        other = "lifetime_budget" if kind == "daily_budget" else "daily_budget"
        if getattr(entity, other) and not getattr(entity, kind):
            raise GraphFailure(
                "Invalid parameter",
                100,
                subcode=1885621,
                user_title="Budget type can't change",
                user_msg=f"This {entity.level} uses a {other.replace('_', ' ')}.",
                blame=kind,
            )
        minimum = account.min_daily_budget
        if kind == "daily_budget" and amount < minimum:
            shown = f"{minimum / offset(account.currency):.{decimals(account.currency)}f}"
            raise GraphFailure(
                "Invalid parameter",
                100,
                subcode=1885272,
                user_title="Your Budget Is Too Low",
                user_msg=f"The minimum daily budget for this ad set is {shown} {account.currency}.",
                blame=kind,
            )
        return amount

    def _count_budget_change(self, entity: Entity) -> None:
        now = self.world.clock()
        hour_ago = now - timedelta(hours=1)
        recent = [t for t in self.world.budget_changes.get(entity.id, []) if t > hour_ago]
        if len(recent) >= BUDGET_CHANGES_PER_HOUR:
            raise GraphFailure(
                "Calls to this api have exceeded the rate limit.",
                613,
                subcode=1487632,
                user_title="Too many budget changes",
                user_msg="You can change the budget of an ad set at most 4 times an hour.",
            )
        self.world.budget_changes[entity.id] = [*recent, now]

    def _copy(self, object_id: str, params: dict[str, str]) -> dict[str, Any]:
        source = self.world.entities.get(object_id)
        if source is None or source.status == "DELETED":
            raise _gone(object_id)
        status = params.get("status_option", "PAUSED")
        if status not in ("ACTIVE", "PAUSED", "INHERITED_FROM_SOURCE"):
            raise GraphFailure(
                "(#100) status_option must be ACTIVE, PAUSED or INHERITED_FROM_SOURCE",
                100,
                blame="status_option",
            )
        rename = _json_object(params.get("rename_options"), "rename_options")
        strategy = rename.get("rename_strategy", "ONLY_TOP_LEVEL_RENAME")
        suffix = rename.get("rename_suffix", " - Copy")
        prefix = rename.get("rename_prefix", "")
        deep = params.get("deep_copy") in ("true", "1") and source.level != "ad"
        parent_key = {"adset": "campaign_id", "ad": "adset_id"}.get(source.level)
        parent_id = params.get(parent_key) if parent_key else None
        if parent_id and parent_id not in self.world.entities:
            raise _gone(parent_id)
        children = []
        if deep:
            below = "adset" if source.level == "campaign" else "ad"
            children = self.world.children(source.id, below)
            grandchildren = self.world.children(source.id, "ad") if below == "adset" else []
            if len(children) + len(grandchildren) > COPY_CHILD_LIMIT:
                raise GraphFailure(
                    "Invalid parameter",
                    100,
                    subcode=1885194,
                    user_title="Too Many Objects to Copy",
                    user_msg="Synchronous deep copies are limited to 3 child objects; "
                    "copy asynchronously instead.",
                )

        def new_status(entity: Entity) -> str:
            return entity.status if status == "INHERITED_FROM_SOURCE" else status

        def new_name(entity: Entity, top: bool) -> str:
            if strategy == "NO_RENAME" or (strategy == "ONLY_TOP_LEVEL_RENAME" and not top):
                return entity.name
            return f"{prefix}{entity.name}{suffix}"

        copy = self.world.copy_entity(
            source, status=new_status(source), name=new_name(source, True), parent_id=parent_id
        )
        objects = [{"ad_object_type": source.level, "source_id": source.id, "copied_id": copy.id}]
        for child in children:
            child_copy = self.world.copy_entity(
                child, status=new_status(child), name=new_name(child, False), parent_id=copy.id
            )
            objects.append(
                {"ad_object_type": child.level, "source_id": child.id, "copied_id": child_copy.id}
            )
            for ad in self.world.children(child.id, "ad") if child.level == "adset" else []:
                ad_copy = self.world.copy_entity(
                    ad, status=new_status(ad), name=new_name(ad, False), parent_id=child_copy.id
                )
                objects.append(
                    {"ad_object_type": "ad", "source_id": ad.id, "copied_id": ad_copy.id}
                )
        self.world.log_activity(copy, "create", {"source_id": source.id})
        result: dict[str, Any] = {f"copied_{source.level}_id": copy.id}
        if source.level != "ad":
            result["ad_object_ids"] = objects
        self.world.log_write("POST", f"{object_id}/copies", object_id, params, result)
        return result

    # ------------------------------------------------------------------ batch

    def _batch(self, params: dict[str, str], version: str | None) -> list[Any]:
        items = _json_list(params.get("batch"), "batch")
        if items is None or not items:
            raise GraphFailure("(#100) The batch parameter must be a non-empty JSON array", 100)
        if len(items) > BATCH_LIMIT:
            raise GraphFailure(
                "(#1) Too many requests in batch message. Maximum batch size is 50", 1
            )
        answers: list[Any] = []
        for item in items:
            if not isinstance(item, dict) or "relative_url" not in item:
                answers.append(
                    _batch_answer(
                        400,
                        {
                            "error": {
                                "message": "(#100) Each batch item needs method and relative_url",
                                "code": 100,
                            }
                        },
                    )
                )
                continue
            if self.faults.draw(special="batch_null"):
                answers.append(None)  # Meta ran out of time for this one: not executed
                continue
            answers.append(self._batch_item(item, version))
        return answers

    def _batch_item(self, item: dict, version: str | None) -> Any:
        relative = str(item["relative_url"]).lstrip("/")
        path, _, query = relative.partition("?")
        params = dict(parse_qsl(query, keep_blank_values=True))
        if item.get("body"):
            params.update(parse_qsl(str(item["body"]), keep_blank_values=True))
        parts = [p for p in path.split("/") if p]
        if parts and _is_version(parts[0]):
            parts.pop(0)
        fault = self.faults.draw()
        if fault:
            status, headers, body = self._fault(fault, parts, secrets.token_urlsafe(8))
            return _batch_answer(status, body, headers)
        method = str(item.get("method", "GET")).upper()
        try:
            body = self._route(method, parts, params, version)
        except GraphFailure as failure:
            return _batch_answer(failure.status, {"error": failure.body})
        lost = self.faults.draw(among=("lost_item",)) if method == "POST" else None
        if lost:
            return None  # applied, but the batch answers `null` for it
        return _batch_answer(200, body)


# ------------------------------------------------------------------------ helpers


def _is_version(text: str) -> bool:
    return text.startswith("v") and text[1:].replace(".", "").isdigit()


def _fields(params: dict[str, str]) -> list[str]:
    """`fields` comma-joined (GET) or a JSON list (the SDKs' POST bodies)."""
    raw = params.get("fields", "").strip()
    if raw.startswith("["):
        return [str(f).strip() for f in _json_list(raw, "fields") or []]
    return [f.strip() for f in raw.split(",") if f.strip()]


def _pick(values: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    picked = {"id": values["id"]} if "id" in values else {}
    picked.update({f: values[f] for f in fields if f in values and values[f] is not None})
    return picked


def _plain_value(value: Any) -> Any:
    """A value as the change history shows it (JSON: a time as ISO 8601 text)."""
    return value.isoformat() if isinstance(value, datetime) else value


def _refusing(check: Any, value: Any) -> Any:
    """`check(value)`, a TargetingRefused turned into Meta's error answer."""
    try:
        return check(value)
    except TargetingRefused as refused:
        raise GraphFailure(
            str(refused), 100, subcode=refused.subcode, blame=refused.blame,
            user_title=refused.user_title, user_msg=refused.user_msg,
        ) from None  # fmt: skip


def _json_list(raw: str | None, name: str) -> list[Any] | None:
    if raw is None or raw == "":
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = [v for v in raw.split(",") if v]  # Meta also takes a bare comma list
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise GraphFailure(f"(#100) {name} must be a JSON array", 100, blame=name)
    return value


def _json_object(raw: str | None, name: str) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise GraphFailure(f"(#100) {name} must be a JSON object", 100, blame=name) from None
    if not isinstance(value, dict):
        raise GraphFailure(f"(#100) {name} must be a JSON object", 100, blame=name)
    return value


def _int(raw: str | None, name: str, default: int, *, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise GraphFailure(
            f"(#100) {name} must be an integer from {low} to {high}", 100, blame=name
        )
    return int(raw)


def _instant(raw: str | None, name: str) -> datetime | None:
    """A `since` / `until` of the activities edge: unix seconds or an ISO date / time."""
    if raw is None or raw == "":
        return None
    try:
        if raw.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(raw), UTC)
        value = datetime.fromisoformat(raw)
    except (ValueError, OverflowError, OSError):
        message = f"(#100) {name} must be a unix time or a date"
        raise GraphFailure(message, 100, blame=name) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _encode_cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"rex:{index}".encode()).decode().rstrip("=")


def _cursor(raw: str, name: str) -> int:
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        if not text.startswith("rex:"):
            raise ValueError(text)
        return max(0, int(text.removeprefix("rex:")))
    except (ValueError, UnicodeDecodeError):
        raise GraphFailure(f"(#100) The {name} cursor is invalid", 100, blame=name) from None


def _hours(seconds: float) -> float | int:
    hours = seconds / 3600
    return int(hours) if hours == int(hours) else hours


def _money(minor: int, currency: str) -> str:
    places = decimals(currency)
    value = minor / offset(currency)
    return f"{value:.{places}f}" if places else str(minor)


PURCHASE_TYPES = ("offsite_conversion.fb_pixel_purchase", "purchase", "omni_purchase")


def _metrics_json(
    day: Day, currency: str, fields: list[str], *, on_meta_only: bool = False
) -> dict[str, Any]:
    """A row's metric columns as Meta writes them: strings, money in major units, purchases
    under each of Meta's purchase action types (a client must count only one). With
    `on_meta_only` (a region, DMA or hourly breakdown) no off-Meta action metrics: no
    purchases in `actions`, no `action_values`, `purchase_roas`, `cost_per_action_type`."""
    unit = offset(currency)
    values: dict[str, Any] = {
        "spend": _money(day.spend, currency),
        "impressions": str(day.impressions),
        "clicks": str(day.clicks),
        "reach": str(day.reach),
    }
    if day.impressions:
        values["ctr"] = f"{day.clicks / day.impressions * 100:.6f}"
        values["cpm"] = f"{day.spend / unit / day.impressions * 1000:.6f}"
    if day.clicks:
        values["cpc"] = f"{day.spend / unit / day.clicks:.6f}"
    if day.reach:
        values["frequency"] = f"{day.impressions / day.reach:.6f}"
    actions = [{"action_type": "link_click", "value": str(day.clicks)}] if day.clicks else []
    if on_meta_only:
        day = replace(day, purchases=0, revenue=0)
    if day.purchases:
        actions += [{"action_type": t, "value": str(day.purchases)} for t in PURCHASE_TYPES]
        cost = _money(day.spend // day.purchases, currency)
        values["cost_per_action_type"] = [{"action_type": t, "value": cost} for t in PURCHASE_TYPES]
    if actions:
        values["actions"] = actions
    if day.revenue:
        revenue = _money(day.revenue, currency)
        values["action_values"] = [{"action_type": t, "value": revenue} for t in PURCHASE_TYPES]
        if day.spend:
            roas = f"{day.revenue / day.spend:.6f}"
            values["purchase_roas"] = [{"action_type": "omni_purchase", "value": roas}]
    return {k: v for k, v in values.items() if k in fields}


def _batch_answer(status: int, body: Any, headers: dict[str, str] | None = None) -> dict:
    header_list = [{"name": "Content-Type", "value": "text/javascript; charset=UTF-8"}]
    header_list += [{"name": k, "value": v} for k, v in (headers or {}).items()]
    return {"code": status, "headers": header_list, "body": json.dumps(body)}
