"""YAML run files: exactly the API's run request (``POST /api/runs``, ``app.schemas.RunCreate``),
with one convenience: ``dataset`` may name the dataset instead of ``dataset_id``::

    dataset: sft_demo.jsonl        # an id, a dataset's name, or a local file uploaded first
    strategy: grpo
    base_model: smollm2-135m-instruct
    name: arithmetic-grpo
    hyperparameters:
      max_steps: 40
      learning_rate: 1.0e-5
      num_generations: 4
    reward_functions:
      - name: exact_answer
        weight: 1.0

The file is checked against the same schema as the launch form, and its errors are worded as the
API words them (``hyperparameters.learning_rate: ...``, the field path first); the server then
runs the form's own checks. ``--set key=value`` overrides a (dotted) key before that:
``--set hyperparameters.max_steps=10``; a key that is not one of the request's own fields is a
hyperparameter (``--set learning_rate=2e-4``). Values are read as YAML (``10``, ``true``,
``[a, b]``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from app.client.api import TuneDeckError
from app.schemas import RunCreate, validation_detail

if TYPE_CHECKING:
    from app.client.api import TuneDeck

NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
TOP_LEVEL = {*RunCreate.model_fields, "dataset"}


class RunFileError(TuneDeckError):
    """A run file that cannot become a run request; the message names the field."""


def read_run_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise RunFileError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RunFileError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise RunFileError(f"{path}: a run file is a mapping of the run request's fields "
                           "(dataset, strategy, base_model, hyperparameters, ...)")
    data.setdefault("__dir__", str(path.resolve().parent))
    return data


def parse_overrides(overrides: Mapping[str, Any] | Iterable[str] | None) -> dict[str, Any]:
    if not overrides:
        return {}
    if isinstance(overrides, Mapping):
        return dict(overrides)
    parsed = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RunFileError(
                f"--set {item!r}: write key=value, e.g. hyperparameters.max_steps=10")
        try:
            parsed[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            parsed[key.strip()] = value
        if isinstance(parsed[key.strip()], str) and NUMBER.match(value.strip()):
            parsed[key.strip()] = float(value)  # YAML 1.1 reads 1e-4 as a string
    return parsed


def apply_overrides(data: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        path = key.split(".")
        if path[0] not in TOP_LEVEL:
            path = ["hyperparameters", *path]
        target = data
        for part in path[:-1]:
            child = target.get(part)
            if child is None:
                child = target[part] = {}
            if not isinstance(child, dict):
                raise RunFileError(f"--set {key}: {part} is not a mapping")
            target = child
        target[path[-1]] = value
    return data


def resolve_dataset(data: dict[str, Any], client: TuneDeck | None) -> dict[str, Any]:
    """``dataset`` (an id, a name, or a local file to upload) becomes ``dataset_id``."""
    base = Path(data.pop("__dir__", "."))
    if "dataset" not in data:
        return data
    ref = data.pop("dataset")
    if "dataset_id" in data:
        raise RunFileError("dataset: give either dataset or dataset_id, not both")
    if isinstance(ref, bool) or not isinstance(ref, int | str) or ref == "":
        raise RunFileError("dataset: an id, a dataset's name, or the path of a local file")
    if isinstance(ref, int) or ref.isdigit():
        data["dataset_id"] = int(ref)
        return data
    if client is None:
        raise RunFileError("dataset: naming a dataset needs a server to look it up")
    local = next((p for p in (base / ref, Path(ref)) if p.is_file()), None)
    dataset = client.datasets.upload(local) if local else client.datasets.find(ref)
    data["dataset_id"] = dataset.id
    return data


def validate(data: Mapping[str, Any]) -> RunCreate:
    try:
        return RunCreate.model_validate(dict(data))
    except ValidationError as exc:
        raise RunFileError(validation_detail(exc.errors())) from exc


def to_request(data: Mapping[str, Any], *, client: TuneDeck | None = None,
               overrides: Mapping[str, Any] | Iterable[str] | None = None) -> RunCreate:
    """A run file's mapping (with ``--set`` overrides) as the API's run request."""
    body = apply_overrides(dict(data), parse_overrides(overrides))
    return validate(resolve_dataset(body, client))

