"""A Python client over TuneDeck's REST API (httpx), typed with the API's own pydantic schemas.

    from app.client import TuneDeck

    with TuneDeck("http://127.0.0.1:8000") as td:
        dataset = td.datasets.upload("rows.jsonl")
        run = td.runs.launch({"dataset_id": dataset.id, "strategy": "sft",
                              "hyperparameters": {"max_steps": 50}})
        run = td.runs.wait(run.id)
        td.runs.download(run.id, dest="adapters/")

Errors the server answers with come back as :class:`APIError` carrying its ``detail`` text.
Requests that are safe to repeat (GET, DELETE, cancel) are retried with back-off when the
connection fails; a launch or an upload never is (it could be applied twice).

The client speaks HTTP only: it imports nothing of the server but ``app.schemas`` (a contract in
pyproject.toml checks that), so it works against any TuneDeck reachable over the network.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import httpx

from app.client import config as client_config
from app.schemas import CheckpointPublic, DatasetPublic, RunCreate, RunPublic

if TYPE_CHECKING:
    import pandas as pd

FINISHED = ("completed", "failed", "cancelled", "pruned")
IDEMPOTENT_METHODS = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}

ProgressCallback = Callable[[int, int | None], None]


class TuneDeckError(Exception):
    """Anything the client could not do; the message says what happened."""


class APIError(TuneDeckError):
    """The server answered with an error; ``detail`` is its explanation, verbatim."""

    def __init__(self, status_code: int, detail: str, *, method: str = "", path: str = ""):
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.method = method
        self.path = path


class ServerUnreachable(TuneDeckError):
    """No answer from the server (after retries where the call was safe to repeat)."""


def error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # FastAPI's default shape, should a route bypass ours
        detail = "; ".join(
            ".".join(str(p) for p in d.get("loc", []) if p != "body") + f": {d.get('msg')}"
            for d in detail if isinstance(d, dict))
    return str(detail) if detail else response.text.strip()[:500]


class _ProgressReader:
    """A binary file whose reads report progress (httpx streams multipart parts in chunks)."""

    def __init__(self, file: BinaryIO, total: int, callback: ProgressCallback):
        self._file, self._total, self._callback, self._sent = file, total, callback, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(size)
        self._sent += len(chunk)
        self._callback(self._sent, self._total)
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        position = self._file.seek(offset, whence)
        if whence == 0 and offset == 0:
            self._sent = 0
        return position

    def tell(self) -> int:
        return self._file.tell()

    def fileno(self) -> int:
        return self._file.fileno()


class TuneDeck:
    """One connection to a TuneDeck server. ``server`` and ``token`` default to
    ``$TUNEDECK_SERVER`` / ``$TUNEDECK_AUTH_TOKEN``, then the config file
    (``~/.config/tunedeck/config.toml``), then http://127.0.0.1:8000 without a token."""

    def __init__(self, server: str | None = None, token: str | None = None, *,
                 timeout: float = 60.0, retries: int = 3, backoff_s: float = 0.5,
                 http: httpx.Client | None = None) -> None:
        resolved = client_config.resolve(server, token)
        self.server = resolved.server
        self.retries = max(0, retries)
        self.backoff_s = backoff_s
        headers = {"Authorization": f"Bearer {resolved.token}"} if resolved.token else {}
        if http is None:
            self._http = httpx.Client(base_url=self.server, timeout=timeout, headers=headers)
        else:  # e.g. FastAPI's TestClient in tests
            self._http = http
            self._http.headers.update(headers)
        self.datasets = Datasets(self)
        self.runs = Runs(self)
        self.evaluations = Evaluations(self)

    # -- plumbing ---------------------------------------------------------------------------
    def __enter__(self) -> TuneDeck:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, idempotent: bool | None = None,
                **kwargs: Any) -> httpx.Response:
        """One API call; raises APIError with the server's detail on 4xx/5xx."""
        method = method.upper()
        safe = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        attempts = 1 + (self.retries if safe else 0)
        for attempt in range(attempts):
            try:
                response = self._http.request(method, path, **kwargs)
                break
            except httpx.TransportError as exc:
                if attempt + 1 >= attempts:
                    raise ServerUnreachable(
                        f"cannot reach TuneDeck at {self.server} ({type(exc).__name__}: {exc})"
                        + (f" after {attempts} attempts" if attempts > 1 else "")
                    ) from exc
                time.sleep(self.backoff_s * 2**attempt)
        if response.status_code >= 400:
            raise APIError(response.status_code, error_detail(response), method=method, path=path)
        return response

    def get_json(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean).json()

    # -- compare ----------------------------------------------------------------------------
    def compare(self, run_ids: Iterable[int], metrics: Iterable[str] | None = None,
                max_points: int = 500) -> dict[str, Any]:
        """The compare page's payload: ``runs`` (summaries with final/best key metrics),
        ``metrics`` (downsampled curves), ``config_diff`` (every setting, with ``differs``)."""
        names = ",".join(metrics) if metrics else None
        return self.get_json("/api/compare", run_ids=",".join(str(i) for i in run_ids),
                             names=names, max_points=max_points)


class _Part:
    def __init__(self, client: TuneDeck) -> None:
        self._c = client


class Datasets(_Part):
    def upload(self, path: str | Path, name: str | None = None,
               progress: ProgressCallback | None = None) -> DatasetPublic:
        """Upload a JSONL, CSV or Parquet file; ``progress(sent, total)`` as it streams."""
        path = Path(path)
        if not path.is_file():
            raise TuneDeckError(f"{path}: no such file")
        total = path.stat().st_size
        with path.open("rb") as file:
            body: Any = _ProgressReader(file, total, progress) if progress else file
            response = self._c.request(
                "POST", "/api/datasets", files={"file": (path.name, body)},
                data={"name": name} if name else None)
        return DatasetPublic.model_validate(response.json())

    def list(self) -> list[DatasetPublic]:
        return [DatasetPublic.model_validate(d) for d in self._c.get_json("/api/datasets")]

    def get(self, dataset_id: int) -> DatasetPublic:
        return DatasetPublic.model_validate(self._c.get_json(f"/api/datasets/{dataset_id}"))

    def preview(self, dataset_id: int, limit: int = 20) -> dict[str, Any]:
        return self._c.get_json(f"/api/datasets/{dataset_id}/preview", limit=limit)

    def find(self, ref: int | str) -> DatasetPublic:
        """A dataset by id, or by name (the newest of that name)."""
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            return self.get(int(ref))
        for dataset in self.list():  # newest first
            if dataset.name == ref:
                return dataset
        raise TuneDeckError(f"no dataset named {ref!r} on {self._c.server}")

    def delete(self, dataset_id: int, cascade: bool = False) -> None:
        self._c.request("DELETE", f"/api/datasets/{dataset_id}",
                        params={"cascade": "true"} if cascade else None)


class Runs(_Part):
    def launch(self, spec: Mapping[str, Any] | RunCreate | str | Path,
               overrides: Mapping[str, Any] | Iterable[str] | None = None) -> RunPublic:
        """Queue a run from a request dict, a RunCreate, or a YAML run file's path; see
        app.client.runfile for the file's format and ``overrides`` ("key=value" strings or a
        {dotted.key: value} mapping)."""
        from app.client import runfile

        if isinstance(spec, RunCreate):
            body = spec
        else:
            raw = runfile.read_run_file(spec) if isinstance(spec, str | Path) else dict(spec)
            body = runfile.to_request(raw, client=self._c, overrides=overrides)
        response = self._c.request("POST", "/api/runs",
                                   json=body.model_dump(mode="json", exclude_none=True))
        return RunPublic.model_validate(response.json())

    def get(self, run_id: int) -> RunPublic:
        return RunPublic.model_validate(self._c.get_json(f"/api/runs/{run_id}"))

    def list(self, status: str | None = None, strategy: str | None = None,
             dataset_id: int | None = None) -> list[RunPublic]:
        rows = self._c.get_json("/api/runs", status=status, strategy=strategy,
                                dataset_id=dataset_id)
        return [RunPublic.model_validate(r) for r in rows]

    def wait(self, run_id: int, *, poll_s: float = 2.0, timeout_s: float | None = None,
             on_update: Callable[[RunPublic], None] | None = None) -> RunPublic:
        """Poll until the run is completed, failed or cancelled; ``on_update(run)`` each time.
        A server briefly unreachable (a restart) is waited out: GETs are retried."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            run = self.get(run_id)
            if on_update:
                on_update(run)
            if run.status in FINISHED:
                return run
            if deadline is not None and time.monotonic() > deadline:
                raise TuneDeckError(f"run {run_id} is still {run.status} after {timeout_s:g} s")
            time.sleep(poll_s)

    def cancel(self, run_id: int) -> RunPublic:
        # Asking twice to stop is the same as asking once.
        response = self._c.request("POST", f"/api/runs/{run_id}/cancel", idempotent=True)
        return RunPublic.model_validate(response.json())

    def resume(self, run_id: int) -> RunPublic:
        response = self._c.request("POST", f"/api/runs/{run_id}/resume")
        return RunPublic.model_validate(response.json())

    def delete(self, run_id: int) -> None:
        self._c.request("DELETE", f"/api/runs/{run_id}")

    def metrics_raw(self, run_id: int, names: Iterable[str] | None = None
                    ) -> dict[str, list[list[Any]]]:
        wanted = ",".join(names) if names else None
        return self._c.get_json(f"/api/runs/{run_id}/metrics", names=wanted)["metrics"]

    def metrics(self, run_id: int, names: Iterable[str] | None = None) -> pd.DataFrame:
        """Every logged value at full resolution: one row per step, one column per metric."""
        import pandas as pd

        series = self.metrics_raw(run_id, names)
        frames = [pd.Series({s: v for s, v in points}, name=name, dtype="float64")
                  for name, points in series.items()]
        frame = pd.concat(frames, axis=1) if frames else pd.DataFrame()
        frame.index.name = "step"
        return frame.sort_index()

    def checkpoints(self, run_id: int) -> list[CheckpointPublic]:
        rows = self._c.get_json(f"/api/runs/{run_id}/checkpoints")
        return [CheckpointPublic.model_validate(c) for c in rows]

    def download(self, run_id: int, step: int | str = "best", dest: str | Path = ".") -> Path:
        """Save a checkpoint's LoRA adapter zip (``best`` or a step) into the folder ``dest``."""
        which = "best" if step == "best" else str(int(step))
        response = self._c.request("GET", f"/api/runs/{run_id}/checkpoints/{which}/download")
        match = re.search(r'filename="([^"/\\]+)"', response.headers.get("content-disposition", ""))
        filename = match.group(1) if match else f"tunedeck-run{run_id}-{which}-adapter.zip"
        folder = Path(dest)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / filename
        target.write_bytes(response.content)
        return target

    def run_file(self, run_id: int) -> str:
        """The run's request as a YAML run file (what the run page's "Download as YAML" gives)."""
        return self._c.request("GET", f"/api/runs/{run_id}/run.yaml").text

    def health(self, run_id: int) -> list[dict[str, Any]]:
        return self._c.get_json(f"/api/runs/{run_id}/health")


class Evaluations(_Part):
    def create(self, run_id: int, **body: Any) -> dict[str, Any]:
        """Queue an evaluation (checkpoint="best" or a step, scorers, limit…)."""
        return self._c.request("POST", f"/api/runs/{run_id}/evaluations", json=body).json()

    def list(self, run_id: int | None = None) -> list[dict[str, Any]]:
        if run_id is not None:
            return self._c.get_json(f"/api/runs/{run_id}/evaluations")
        return self._c.get_json("/api/evaluations")

    def get(self, evaluation_id: int) -> dict[str, Any]:
        return self._c.get_json(f"/api/evaluations/{evaluation_id}")
