"""Notifications: tell people when a run finishes or fails, when its curves or tracker mirrors
raise a health warning (worker/health_watch.py) and when an evaluation finishes.

Targets are Apprise URLs (Slack, Discord, ntfy, email, Telegram, ...: https://appriseit.com):
the run's own ``notify_urls`` when it has them, else ``TUNEDECK_NOTIFY_URLS``. Generic JSON
webhooks (``json://host/path``, ``jsons://`` for HTTPS, Apprise's syntax) are posted by TuneDeck
itself so that their body can be signed: ``X-TuneDeck-Signature-256: sha256=<hex>`` is the
HMAC-SHA256 of the raw body with ``TUNEDECK_NOTIFY_SECRET``.

Sending never blocks or fails the run: ``notify`` records one row per target (the run page lists
them) and delivers in a background thread, retrying with back-off; a target that keeps failing
ends ``failed`` with the reason.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import settings
from app.core.db import session_scope
from app.domain.models import Checkpoint, Evaluation, Notification, Run

log = logging.getLogger(__name__)
# Opens a unit of work that commits on exit: the app's database unless a caller (the reaper, on
# whatever database it watches) passes its own.
Sessions = Callable[[], AbstractContextManager[Session]]

SIGNATURE_HEADER = "X-TuneDeck-Signature-256"
EVENT_HEADER = "X-TuneDeck-Event"
JSON_SCHEMES = {"json": "http", "jsons": "https"}
# Apprise's notification types, by event.
EVENT_TYPES = {"run.completed": "success", "run.failed": "failure", "run.cancelled": "info",
               "run.pruned": "info",
               "evaluation.completed": "success", "evaluation.failed": "failure",
               "run.health_warning": "warning"}


class NotifyFailed(Exception):
    """One attempt at one target failed; the message says why."""


def targets_for(run: Run) -> list[str]:
    return list(settings.notify_urls if run.notify_urls is None else run.notify_urls)


def mask(url: str) -> str:
    """The URL without what may be a secret (credentials, tokens in the path or the query)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return f"{parts.scheme}://{host}" + ("/…" if parts.path.strip("/") or parts.query else "")


def url_problem(url: str) -> str | None:
    """Why Apprise cannot send to ``url``, or None."""
    import apprise

    if not isinstance(url, str) or "://" not in url:
        return f"{url!r} is not a notification URL (e.g. ntfy://topic, json://host/path)"
    if not apprise.Apprise().add(url):
        return (f"{mask(url)} is not a notification URL Apprise knows "
                "(see https://appriseit.com for the schemes)")
    return None


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# -- what a message says ---------------------------------------------------------------------
def run_summary(session: Any, run: Run) -> dict[str, Any]:
    best = session.scalar(select(Checkpoint).where(Checkpoint.run_id == run.id,
                                                   Checkpoint.is_best.is_(True)))
    return {
        "id": run.id, "name": run.name, "status": run.status.value, "strategy": run.strategy,
        "base_model": run.base_model, "dataset_id": run.dataset_id, "step": run.step,
        "max_steps": run.max_steps, "error": run.error, "path": f"/runs/{run.id}",
        "best_checkpoint": None if best is None else {
            "step": best.step, "metric_name": best.metric_name,
            "metric_value": best.metric_value},
    }


def message(event: str, run: dict[str, Any], extra: dict[str, Any]) -> tuple[str, str]:
    what = f"run #{run['id']} {run['name']}"
    if event == "run.completed":
        best = run["best_checkpoint"]
        body = f"{what} completed after {run['step']} steps"
        if best and best["metric_value"] is not None:
            body += f"; best checkpoint at step {best['step']} ({best['metric_name']} " \
                    f"{best['metric_value']:.4g})"
        return f"TuneDeck: {what} completed", body
    if event == "run.failed":
        error = (run.get("error") or "").strip().splitlines()
        return f"TuneDeck: {what} failed", f"{what} failed: {error[0] if error else 'no reason'}"
    if event.startswith("evaluation."):
        evaluation = extra.get("evaluation", {})
        status = event.split(".", 1)[1]
        return (f"TuneDeck: evaluation #{evaluation.get('id')} of {what} {status}",
                f"evaluation #{evaluation.get('id')} of {what} (checkpoint "
                f"{evaluation.get('checkpoint_step')}) {status}"
                + (f": {evaluation['error']}" if evaluation.get("error") else ""))
    if event == "run.health_warning":
        warning = extra.get("warning", {})
        at = f" at step {warning['step']}" if warning.get("step") is not None else ""
        return (f"TuneDeck: {what}: {warning.get('code')}",
                f"{what}{at}: {warning.get('message')}. {warning.get('explanation', '')}".strip())
    detail = extra.get("detail", "")
    return f"TuneDeck: {what}: {event}", f"{what}: {detail or event}"


# -- sending ---------------------------------------------------------------------------------
def send_json_webhook(url: str, payload: dict[str, Any], *, secret: str, timeout: float) -> None:
    parts = urlsplit(url)
    scheme = JSON_SCHEMES[parts.scheme]
    # Not parse_qsl: it reads "+" as a space, and Apprise's "+Header=value" starts with one.
    query = [(unquote(k), unquote(v)) for k, _, v in
             (item.partition("=") for item in parts.query.split("&") if item)]
    headers = {k[1:]: v for k, v in query if k.startswith("+")}  # Apprise: +Header=value
    params = [(k, v) for k, v in query if not k.startswith(("+", "-", ":"))]
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    auth = (parts.username or "", parts.password or "") if parts.username else None
    target = urlunsplit((scheme, netloc, parts.path or "/", "", ""))
    body = json.dumps(payload, sort_keys=True, default=str).encode()
    headers |= {"Content-Type": "application/json", EVENT_HEADER: payload["event"],
                "User-Agent": "TuneDeck"}
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    try:
        response = httpx.post(target, content=body, headers=headers, params=params, auth=auth,
                              timeout=timeout)
    except httpx.HTTPError as exc:
        raise NotifyFailed(f"{type(exc).__name__}: {exc}") from exc
    if response.status_code >= 300:
        raise NotifyFailed(f"HTTP {response.status_code} from {mask(url)}")


def send_apprise(url: str, payload: dict[str, Any], *, timeout: float) -> None:
    import apprise

    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise NotifyFailed(f"{mask(url)} is not a notification URL Apprise knows")
    with apprise.LogCapture(level=logging.WARNING) as logs:
        ok = notifier.notify(body=payload["message"], title=payload["title"],
                             notify_type=payload["type"])
    if not ok:
        lines = [ln.split(" - ", 2)[-1] for ln in logs.getvalue().splitlines() if ln.strip()]
        raise NotifyFailed("; ".join(lines[-3:]) or f"Apprise could not send to {mask(url)}")


def send(url: str, payload: dict[str, Any]) -> None:
    if urlsplit(url).scheme in JSON_SCHEMES:
        send_json_webhook(url, payload, secret=settings.notify_secret,
                          timeout=settings.notify_timeout_s)
    else:
        send_apprise(url, payload, timeout=settings.notify_timeout_s)


def deliver(deliveries: list[tuple[int, str]], payload: dict[str, Any],
            sessions: Sessions = session_scope) -> None:
    """Send ``payload`` to each (notification id, url), retrying with back-off; record each
    attempt on its row. Runs in a background thread: it never raises."""
    for notification_id, url in deliveries:
        attempts = 1 + settings.notify_retries
        for attempt in range(1, attempts + 1):
            try:
                send(url, payload)
                error, status = None, "sent"
            except Exception as exc:  # noqa: BLE001 - any failure is recorded, never raised
                error = str(exc)[:2000] or type(exc).__name__
                status = "failed" if attempt == attempts else "pending"
            _record(sessions, notification_id, attempt=attempt, status=status, error=error)
            if status != "pending":
                break
            time.sleep(settings.notify_backoff_s * 2 ** (attempt - 1))


def _record(sessions: Sessions, notification_id: int, *, attempt: int, status: str,
            error: str | None) -> None:
    from app.domain.models import utcnow

    try:
        with sessions() as session:
            row = session.get(Notification, notification_id)
            if row is None:  # the run was deleted meanwhile
                return
            row.attempts, row.status, row.error = attempt, status, error
            if status != "pending":
                row.finished_at = utcnow()
    except Exception:  # a database blip must not kill the sender thread
        log.exception("could not record notification %s", notification_id)


def notify(run_id: int, event: str, *, extra: dict[str, Any] | None = None,
           wait: bool = False, sessions: Sessions = session_scope) -> threading.Thread | None:
    """Record and send ``event`` about run ``run_id`` to its targets in a background thread
    (``wait``: send in this thread). Never raises: notifications are never worth a run."""
    try:
        with sessions() as session:
            run = session.get(Run, run_id)
            if run is None:
                return None
            urls = targets_for(run)
            if not urls:
                return None
            summary = run_summary(session, run)
            title, body = message(event, summary, extra or {})
            rows = [Notification(run_id=run_id, event=event, target=mask(url)) for url in urls]
            session.add_all(rows)
            session.flush()
            deliveries = [(row.id, url) for row, url in zip(rows, urls, strict=True)]
        payload = {"version": "1.0", "event": event, "title": title, "message": body,
                   "type": EVENT_TYPES.get(event, "info"), "run": summary,
                   "sent_at": time.time(), **(extra or {})}
    except Exception:
        log.exception("could not prepare the %s notification of run %s", event, run_id)
        return None
    if wait:
        deliver(deliveries, payload, sessions)
        return None
    thread = threading.Thread(target=deliver, args=(deliveries, payload, sessions), daemon=True,
                              name=f"notify-run-{run_id}")
    thread.start()
    return thread


def notify_run_finished(run_id: int, *, sessions: Sessions = session_scope
                        ) -> threading.Thread | None:
    """After a run's final transition: run.completed or run.failed (a cancel is the user's own
    doing and tells nobody)."""
    try:
        with sessions() as session:
            run = session.get(Run, run_id)
            status = run.status.value if run is not None else None
    except Exception:
        log.exception("could not read run %s to notify", run_id)
        return None
    if status in ("completed", "failed"):
        return notify(run_id, f"run.{status}", sessions=sessions)
    return None


def notify_evaluation_finished(evaluation_id: int) -> threading.Thread | None:
    try:
        with session_scope() as session:
            evaluation = session.get(Evaluation, evaluation_id)
            if evaluation is None or evaluation.run_id is None:
                return None
            status = evaluation.status.value
            extra = {"evaluation": {
                "id": evaluation.id, "status": status,
                "checkpoint_step": evaluation.checkpoint_step, "error": evaluation.error}}
            run_id = evaluation.run_id
    except Exception:
        log.exception("could not read evaluation %s to notify", evaluation_id)
        return None
    if status not in ("completed", "failed"):
        return None
    return notify(run_id, f"evaluation.{status}", extra=extra)
