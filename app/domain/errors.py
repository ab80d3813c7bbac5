"""One exception hierarchy for everything a request can get wrong. Each carries the HTTP status
the API answers with; ``app.main`` maps them once (``{"detail": message}``), so routes raise and
never translate. The message says what to fix."""

from __future__ import annotations


class TuneDeckError(Exception):
    """Base of every error a user's request can cause."""

    status_code = 400


class BadRequest(TuneDeckError, ValueError):
    status_code = 400


class NotFound(TuneDeckError, LookupError):
    status_code = 404


class Conflict(TuneDeckError, ValueError):
    """The request is fine but the thing is in the wrong state for it (cancel a finished run)."""

    status_code = 409


class TooLarge(TuneDeckError):
    status_code = 413


class Invalid(TuneDeckError, ValueError):
    """The request is understood but its content cannot work."""

    status_code = 422


class Busy(TuneDeckError):
    """The server is at its limit for this kind of work right now; trying again later works."""

    status_code = 503
