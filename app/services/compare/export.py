"""Exports of a comparison at full resolution, streamed: CSV (long format) and JSON.

Rows come from one ordered query read in chunks, so memory stays flat however long the runs.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain.metrics import decode_value
from app.domain.models import Metric, Run

CSV_HEADER = ("run_id", "run_name", "metric", "step", "value")
CHUNK_ROWS = 5000


def metric_rows(
    session: Session, *, run_ids: list[int], names: list[str] | None = None
) -> Iterator[tuple[int, str, int, float]]:
    """(run_id, name, step, value) by run (in the order asked), name and step.

    A resumed run may hold a step twice; the later row wins, as in ``metrics.read_series``.
    """
    for run_id in run_ids:
        query = (select(Metric.name, Metric.step, Metric.value, Metric.special)
                 .where(Metric.run_id == run_id).order_by(Metric.name, Metric.step, Metric.id)
                 .execution_options(yield_per=CHUNK_ROWS))
        if names:
            query = query.where(Metric.name.in_(names))
        pending: tuple[int, str, int, float] | None = None
        for name, step, value, special in session.execute(query):
            row = (run_id, name, step, decode_value(value, special))
            if pending is not None and pending[1:3] != row[1:3]:
                yield pending
            pending = row
        if pending is not None:
            yield pending


def _run_names(session: Session, run_ids: list[int]) -> dict[int, str]:
    rows = session.execute(select(Run.id, Run.name).where(Run.id.in_(run_ids)))
    return {run_id: name for run_id, name in rows}


def iter_csv(session: Session, *, run_ids: list[int], names: list[str] | None = None
             ) -> Iterator[str]:
    """``run_id,run_name,metric,step,value`` lines; NaN/inf written as nan/inf."""
    run_names = _run_names(session, run_ids)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for count, (run_id, name, step, value) in enumerate(
            metric_rows(session, run_ids=run_ids, names=names), start=1):
        writer.writerow((run_id, run_names[run_id], name, step, repr(value)))
        if count % CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def iter_json(session: Session, *, run_ids: list[int], names: list[str] | None = None
              ) -> Iterator[str]:
    """``{"runs": [{id, name}], "metrics": {run_id: {name: [[step, value], ...]}}}``; NaN and
    infinities become null (JSON has neither)."""
    run_names = _run_names(session, run_ids)
    runs = [{"id": run_id, "name": run_names[run_id]} for run_id in run_ids]
    yield '{"runs": ' + json.dumps(runs) + ', "metrics": {'
    for index, run_id in enumerate(run_ids):
        chunk = [", " if index else "", f'"{run_id}": {{']
        name: str | None = None
        for _, row_name, step, value in metric_rows(session, run_ids=[run_id], names=names):
            if row_name != name:
                chunk.append(("], " if name is not None else "") + f"{json.dumps(row_name)}: [")
                name = row_name
            else:
                chunk.append(", ")
            chunk.append(f"[{step}, {json.dumps(value) if math.isfinite(value) else 'null'}]")
            if len(chunk) >= CHUNK_ROWS:
                yield "".join(chunk)
                chunk = []
        chunk.append("]}" if name is not None else "}")
        yield "".join(chunk)
    yield "}}"
