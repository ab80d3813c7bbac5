"""``tunedeck datasets|runs|compare ...``: the terminal side of TuneDeck, on app.client.TuneDeck.

Every command takes ``--server URL`` (default ``$TUNEDECK_SERVER``, the config file, then
http://127.0.0.1:8000) and ``--json`` (machine-readable output on stdout; progress and messages
go to stderr). The token comes from ``$TUNEDECK_AUTH_TOKEN`` or the config file.

Exit codes:
  0  done (``runs watch``: the run completed)
  1  the watched run failed or was cancelled
  2  bad usage or an invalid run file (the message names the field)
  3  the server refused the request (4xx; its explanation is printed)
  4  the server could not be reached, or answered with a server error (5xx)
"""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from app.client.api import APIError, ServerUnreachable, TuneDeck, TuneDeckError
from app.client.runfile import RunFileError

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_UNREACHABLE = 0, 1, 2, 3, 4
WATCHED_METRICS = ("loss", "eval_loss", "reward", "rewards/mean", "kl")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False,
                  rich_markup_mode=None, pretty_exceptions_enable=False)
datasets_app = typer.Typer(help="Upload and list datasets.", no_args_is_help=True)
runs_app = typer.Typer(help="Launch, list, watch and download runs.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
app.add_typer(runs_app, name="runs")

Server = Annotated[str | None, typer.Option("--server", envvar="TUNEDECK_SERVER",
                                            help="TuneDeck's URL (default http://127.0.0.1:8000)")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON on stdout, for scripts")]

F = TypeVar("F", bound=Callable[..., Any])


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, default=str, indent=2) + "\n")
    sys.stdout.flush()


def _dump(model: Any) -> Any:
    if isinstance(model, list):
        return [_dump(m) for m in model]
    return model.model_dump(mode="json") if hasattr(model, "model_dump") else model


def handles_errors(func: F) -> F:
    """Client errors become a message (JSON with --json) and the documented exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TuneDeckError as exc:
            if isinstance(exc, APIError):
                code = EXIT_UNREACHABLE if exc.status_code >= 500 else EXIT_REFUSED
                status: int | None = exc.status_code
            else:
                code = EXIT_UNREACHABLE if isinstance(exc, ServerUnreachable) else EXIT_USAGE
                status = None
            if kwargs.get("as_json"):
                _print_json({"error": str(exc), "status_code": status})
            label = f"error ({status})" if status else "error"
            err.print(f"[bold red]{label}:[/] {exc}", highlight=False, markup=True)
            raise typer.Exit(code) from None

    return wrapper  # type: ignore[return-value]


def _client(server: str | None) -> TuneDeck:
    return TuneDeck(server)


# -- datasets --------------------------------------------------------------------------------
@datasets_app.command("upload")
@handles_errors
def datasets_upload(
    file: Annotated[Path, typer.Argument(help="a JSONL, CSV or Parquet file")],
    name: Annotated[str | None, typer.Option(help="default: the file's name")] = None,
    server: Server = None, as_json: AsJson = False,
) -> None:
    """Upload a dataset, with a progress bar."""
    with _client(server) as td, Progress(
        TextColumn("uploading {task.description}"), BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"), console=err, transient=True,
    ) as bar:
        task = bar.add_task(file.name, total=None)

        def progress(sent: int, total: int | None) -> None:
            bar.update(task, completed=sent, total=total)

        dataset = td.datasets.upload(file, name=name, progress=progress)
    if as_json:
        _print_json(_dump(dataset))
        return
    out.print(f"dataset #{dataset.id} [bold]{dataset.name}[/]: {dataset.num_rows} rows, "
              f"format {dataset.format}")


@datasets_app.command("ls")
@handles_errors
def datasets_ls(server: Server = None, as_json: AsJson = False) -> None:
    """List datasets, newest first."""
    with _client(server) as td:
        rows = td.datasets.list()
    if as_json:
        _print_json(_dump(rows))
        return
    if not rows:
        out.print("No datasets yet: upload one with `tunedeck datasets upload FILE`.")
        return
    table = Table("id", "name", "format", "rows", "columns", "created")
    for d in rows:
        table.add_row(str(d.id), d.name, d.format, str(d.num_rows), ", ".join(d.columns),
                      d.created_at.strftime("%Y-%m-%d %H:%M"))
    out.print(table)


# -- runs ------------------------------------------------------------------------------------
def _latest_metrics(td: TuneDeck, run_id: int) -> dict[str, float]:
    series = td.get_json(f"/api/runs/{run_id}/series", max_points=10)["metrics"]
    latest = {}
    for name in WATCHED_METRICS:
        points = [v for _, v in series.get(name, []) if v is not None]
        if points:
            latest[name] = points[-1]
    return latest


def _eta(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return ""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"ETA {hours}:{minutes:02d}:{secs:02d}" if hours else f"ETA {minutes}:{secs:02d}"


def _watch(td: TuneDeck, run_id: int, *, poll_s: float) -> Any:
    columns = (TextColumn("#{task.fields[run_id]} {task.description}"), BarColumn(),
               MofNCompleteColumn(), TextColumn("{task.fields[eta]}"),
               TextColumn("{task.fields[metrics]}"))
    with Progress(*columns, console=err) as bar:
        task = bar.add_task("queued", total=None, run_id=run_id, eta="", metrics="")
        seen = {"status": ""}

        def update(run: Any) -> None:
            text = run.phase_label or run.status
            metrics = _latest_metrics(td, run_id) if run.step else {}
            bar.update(task, description=text, completed=run.step, total=run.max_steps,
                       eta=_eta(run.eta_seconds) if run.status == "running" else "",
                       metrics="  ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
            if run.status != seen["status"]:
                seen["status"] = run.status
                if not err.is_terminal:
                    err.print(f"run #{run_id}: {run.status}", highlight=False)

        return td.runs.wait(run_id, poll_s=poll_s, on_update=update)


def _finish_watch(run: Any, as_json: bool) -> None:
    if as_json:
        _print_json(_dump(run))
    elif run.status == "completed":
        best = run.best_checkpoint
        where = (f"; best checkpoint at step {best.step} ({best.metric_name} "
                 f"{best.metric_value:.4g})" if best and best.metric_value is not None else "")
        out.print(f"run #{run.id} [bold green]completed[/] after {run.step} steps{where}")
    else:
        out.print(f"run #{run.id} [bold red]{run.status}[/]", highlight=False)
        if run.error:
            err.print(run.error, highlight=False, markup=False)
    if run.status != "completed":
        raise typer.Exit(EXIT_RUN_FAILED)


@runs_app.command("launch")
@handles_errors
def runs_launch(
    run_file: Annotated[Path, typer.Argument(metavar="RUN.yaml", help="a YAML run file")],
    set_: Annotated[list[str] | None, typer.Option(
        "--set", metavar="KEY=VALUE",
        help="override a field, e.g. hyperparameters.max_steps=10 (repeatable)")] = None,
    watch: Annotated[bool, typer.Option("--watch", help="follow it until it ends")] = False,
    poll: Annotated[float, typer.Option(help="seconds between polls with --watch")] = 2.0,
    server: Server = None, as_json: AsJson = False,
) -> None:
    """Queue a run from a YAML run file (the API's run request; see `runs yaml`)."""
    with _client(server) as td:
        run = td.runs.launch(run_file, overrides=set_ or [])
        if not watch:
            if as_json:
                _print_json(_dump(run))
            else:
                out.print(f"run #{run.id} [bold]{run.name}[/] queued on {run.queue}: "
                          f"{td.server}/runs/{run.id}")
            return
        err.print(f"run #{run.id} {run.name} queued: {td.server}/runs/{run.id}", highlight=False)
        finished = _watch(td, run.id, poll_s=poll)
    _finish_watch(finished, as_json)


@runs_app.command("ls")
@handles_errors
def runs_ls(
    status: Annotated[list[str] | None, typer.Option(
        help="queued, running, completed, failed, cancelled or pruned (repeatable)")] = None,
    strategy: Annotated[str | None, typer.Option(help="sft, grpo or dpo")] = None,
    dataset: Annotated[int | None, typer.Option(help="a dataset id")] = None,
    server: Server = None, as_json: AsJson = False,
) -> None:
    """List runs, newest first."""
    with _client(server) as td:
        if status:
            found = {r.id: r for s in status
                     for r in td.runs.list(status=s, strategy=strategy, dataset_id=dataset)}
            rows = [found[i] for i in sorted(found, reverse=True)]
        else:
            rows = td.runs.list(strategy=strategy, dataset_id=dataset)
    if as_json:
        _print_json(_dump(rows))
        return
    if not rows:
        out.print("No runs match: launch one with `tunedeck runs launch RUN.yaml`.")
        return
    table = Table("id", "name", "strategy", "status", "step", "best", "created")
    for r in rows:
        best = r.best_checkpoint
        table.add_row(
            str(r.id), r.name, r.strategy, r.status,
            f"{r.step}/{r.max_steps}" if r.max_steps else str(r.step),
            f"{best.metric_name} {best.metric_value:.4g} @ {best.step}"
            if best and best.metric_value is not None else "",
            r.created_at.strftime("%Y-%m-%d %H:%M"))
    out.print(table)


@runs_app.command("watch")
@handles_errors
def runs_watch(
    run_id: Annotated[int, typer.Argument(metavar="ID")],
    poll: Annotated[float, typer.Option(help="seconds between polls")] = 2.0,
    server: Server = None, as_json: AsJson = False,
) -> None:
    """Follow a run (progress, ETA, latest metrics) until it ends; exit 1 unless it completed."""
    with _client(server) as td:
        finished = _watch(td, run_id, poll_s=poll)
    _finish_watch(finished, as_json)


@runs_app.command("download")
@handles_errors
def runs_download(
    run_id: Annotated[int, typer.Argument(metavar="ID")],
    step: Annotated[int | None, typer.Option(help="the checkpoint of this step")] = None,
    best: Annotated[bool, typer.Option("--best", help="the best checkpoint (default)")] = False,
    output: Annotated[Path, typer.Option("-o", "--output", help="folder to save into")] = Path("."),
    server: Server = None, as_json: AsJson = False,
) -> None:
    """Save a checkpoint's LoRA adapter zip (PEFT loads it once unzipped)."""
    if step is not None and best:
        raise RunFileError("use either --step N or --best")
    with _client(server) as td:
        path = td.runs.download(run_id, step="best" if step is None else step, dest=output)
    if as_json:
        _print_json({"run_id": run_id, "path": str(path), "bytes": path.stat().st_size})
    else:
        out.print(f"saved {path} ({path.stat().st_size / 1e6:.1f} MB)")


@runs_app.command("yaml")
@handles_errors
def runs_yaml(
    run_id: Annotated[int, typer.Argument(metavar="ID")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="file to write")] = None,
    server: Server = None,
) -> None:
    """Print (or save) a run's configuration as a run file, to launch it again."""
    with _client(server) as td:
        text = td.runs.run_file(run_id)
    if output:
        output.write_text(text)
        err.print(f"saved {output}")
    else:
        sys.stdout.write(text)


@runs_app.command("cancel")
@handles_errors
def runs_cancel(run_id: Annotated[int, typer.Argument(metavar="ID")],
                server: Server = None, as_json: AsJson = False) -> None:
    """Cancel a queued run, or stop a running one at its next step."""
    with _client(server) as td:
        run = td.runs.cancel(run_id)
    if as_json:
        _print_json(_dump(run))
    else:
        out.print(f"run #{run.id}: cancel requested")


@runs_app.command("resume")
@handles_errors
def runs_resume(run_id: Annotated[int, typer.Argument(metavar="ID")],
                server: Server = None, as_json: AsJson = False) -> None:
    """Continue a failed or cancelled run from its latest checkpoint."""
    with _client(server) as td:
        run = td.runs.resume(run_id)
    if as_json:
        _print_json(_dump(run))
    else:
        out.print(f"run #{run.id}: {run.status}")


# -- compare ---------------------------------------------------------------------------------
def _extremes(points: list[list[Any]], name: str) -> dict[str, Any] | None:
    finite = [(s, v) for s, v in points if v is not None and math.isfinite(v)]
    if not finite:
        return None
    mode = "lower" if "loss" in name or name in {"kl", "grad_norm"} else "higher"
    sign = 1 if mode == "lower" else -1
    best = min(finite, key=lambda p: (sign * p[1], -p[0]))
    return {"final": list(finite[-1]), "best": list(best), "mode": mode}


def comparison_table(payload: dict[str, Any], metrics: list[str] | None) -> dict[str, Any]:
    """Final/best values per run and metric, and the settings that differ."""
    runs = []
    for run in payload["runs"]:
        summary = dict(run["summary"])
        for name in metrics or []:
            if name not in summary:
                points = payload["metrics"].get(str(run["id"]), {}).get(name, [])
                if (found := _extremes(points, name)) is not None:
                    summary[name] = found
        if metrics:
            summary = {name: summary[name] for name in metrics if name in summary}
        runs.append({"id": run["id"], "name": run["name"], "status": run["status"],
                     "strategy": run["strategy"], "step": run["step"], "metrics": summary,
                     "best_checkpoint": run["best_checkpoint"]})
    diff = [row for row in payload["config_diff"]["rows"] if row["differs"]]
    return {"runs": runs, "config_diff": diff}


@app.command("compare")
@handles_errors
def compare(
    run_ids: Annotated[list[int], typer.Argument(metavar="ID ID ...")],
    metric: Annotated[list[str] | None, typer.Option(
        help="metric(s) to tabulate, e.g. eval_loss (default: loss, eval_loss, reward)")] = None,
    server: Server = None, as_json: AsJson = False,
) -> None:
    """Runs side by side: final and best value of each metric, and the config diff."""
    with _client(server) as td:
        payload = td.compare(run_ids, metrics=metric)
    table_data = comparison_table(payload, metric)
    if as_json:
        _print_json(table_data)
        return
    names = sorted({n for r in table_data["runs"] for n in r["metrics"]})
    table = Table("run", "status", *[h for n in names for h in (f"{n} final", f"{n} best")])
    for r in table_data["runs"]:
        cells = []
        for name in names:
            m = r["metrics"].get(name)
            cells += ([f"{m['final'][1]:.4g} @ {m['final'][0]}", f"{m['best'][1]:.4g} @ "
                       f"{m['best'][0]}"] if m else ["", ""])
        table.add_row(f"#{r['id']} {r['name']}", r["status"], *cells)
    out.print(table)
    if not table_data["config_diff"]:
        out.print("Same configuration.")
        return
    diff = Table("setting", *[f"#{r['id']}" for r in table_data["runs"]], title="Config diff")
    for row in table_data["config_diff"]:
        diff.add_row(row["key"], *[json.dumps(row["values"].get(str(r["id"])), default=str)
                                   for r in table_data["runs"]])
    out.print(diff)


COMMANDS = {"datasets", "runs", "compare"}


def main(argv: list[str] | None = None) -> int:
    try:
        app(args=argv, prog_name="tunedeck", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    return EXIT_OK
