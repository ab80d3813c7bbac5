"""Answers for input the database cannot even compare: a 4xx saying so, never a 500."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

# Ids are 64-bit in the database; SQLite refuses to bind anything larger (OverflowError).
MAX_ID = 2**63 - 1


def id_in_range(value: int) -> bool:
    return 0 < value <= MAX_ID


def out_of_range(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": f"a number in the request is out of range for the database ({exc})"},
        status_code=422,
    )
