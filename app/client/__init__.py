"""TuneDeck's Python client and the CLI's client commands (HTTP only: see api.py)."""

from app.client.api import APIError, ServerUnreachable, TuneDeck, TuneDeckError
from app.client.runfile import RunFileError

__all__ = ["APIError", "RunFileError", "ServerUnreachable", "TuneDeck", "TuneDeckError"]
