"""The `modelzoo` command line. Each DVC stage is one `modelzoo <stage> <model>` command.

Heavy libraries (torch, onnx) are imported inside commands only, so that `modelzoo --help`,
`validate` and the `repro` front start fast.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.ci.cli import app as ci_app
from pipelines.consumer.cli import check_bundle_cmd, fetch_cmd, pin_cmd
from pipelines.errors import ModelzooError
from pipelines.gitrepo import find_root

app = typer.Typer(
    name="modelzoo",
    help="Turn perception checkpoints + configs into released, verified deployment artifacts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
reference_app = typer.Typer(help="Data and checkpoint stages of the bundled reference models.", no_args_is_help=True)
app.add_typer(reference_app, name="reference")

from pipelines.registry.cli import register as _register_registry  # noqa: E402

_register_registry(app)  # publish, index, release check|diff, registry ...
app.add_typer(ci_app, name="ci")
from pipelines.site.cli import app as _site_app  # noqa: E402

app.add_typer(_site_app, name="site")

log = logging.getLogger("modelzoo")

ModelArg = Annotated[str, typer.Argument(help="Model name (a folder under models/).")]


def _ctx(name: str) -> Any:
    from pipelines.workspace import model_context

    return model_context(find_root(), name)


def _done(what: str, path: Path) -> None:
    root = find_root()
    shown = path.relative_to(root) if path.is_relative_to(root) else path
    typer.echo(f"{what}: {shown}")


@app.command()
def validate(
    models: Annotated[list[str] | None, typer.Argument(help="Models to check (default: all).")] = None,
) -> None:
    """Check descriptors (schema, task options, params.yaml wiring). Exit 2 on the first bad one."""
    from pipelines.validate import validate_all

    warnings: list[str] = []
    checked = validate_all(find_root(), models or None, warnings)
    for line in warnings:
        typer.echo(f"warning: {line}", err=True)
    typer.echo(f"ok: {len(checked)} descriptor(s) valid: {', '.join(checked)}")


@app.command()
def export(model: ModelArg) -> None:
    """PyTorch -> ONNX (checked, simplified, stamped with provenance)."""
    from pipelines.stages.export import run_export

    ctx = _ctx(model)
    run_export(ctx)
    _done("onnx", ctx.onnx_dir)


@app.command()
def build(model: ModelArg) -> None:
    """Precision variants, then one artifact per build target (targets that cannot build here say why)."""
    from pipelines.stages.build import run_build

    ctx = _ctx(model)
    run_build(ctx)
    _done("build", ctx.build_dir)


@app.command()
def verify(model: ModelArg) -> None:
    """Compare backends on deterministic samples; exit 3 naming the worst output when one disagrees."""
    from pipelines.stages.verify import run_verify

    ctx = _ctx(model)
    report = run_verify(ctx)
    for key, sc in report.scenarios.items():
        typer.echo(f"  {key}: {sc.status}" + (f" ({sc.reason})" if sc.reason else ""))
    _done("verify report", ctx.verify_report)


@app.command()
def evaluate(model: ModelArg) -> None:
    """Task metrics and latency for every enabled backend."""
    from pipelines.stages.evaluate import run_evaluate

    ctx = _ctx(model)
    out = run_evaluate(ctx)
    for key, m in out["backends"].items():
        typer.echo(
            f"  {key}: {out['headline']}={m.get(out['headline'])} latency {m['latency_ms']['total']['mean']:.3f} ms"
        )
    for key, reason in out.get("skipped", {}).items():
        typer.echo(f"  {key}: skipped ({reason})")
    _done("metrics", ctx.metrics)


@app.command("env")
def env_cmd(
    target: Annotated[
        str, typer.Argument(help="Build target: a runtime with a build (onnxruntime, tensorrt, tensorrt_rtx).")
    ],
) -> None:
    """Write the environment fingerprint of a build target (a DVC dependency of every build)."""
    from pipelines.fileio import write_json_if_changed
    from pipelines.runtimes import TARGETS, target_environment

    if target not in TARGETS:
        raise ModelzooError(f"unknown target '{target}' (known: {', '.join(TARGETS)})", exit_code=2)
    env = target_environment(target)
    write_json_if_changed(find_root() / "artifacts" / "env" / f"{target}.json", env.to_json())
    typer.echo(f"{target}: {env.key}" + ("" if env.available else f" (unavailable: {env.reason})"))


@reference_app.command("recipe")
def reference_recipe(model: ModelArg) -> None:
    """Write what the data and training stages read (a model edit elsewhere does not retrain)."""
    from pipelines.reference import write_recipe

    ctx = _ctx(model)
    _done("recipe", write_recipe(ctx))


@reference_app.command("data")
def reference_data(model: ModelArg) -> None:
    """Write the deterministic synthetic dataset of a reference model."""
    from pipelines.reference import make_data

    ctx = _ctx(model)
    make_data(ctx)
    _done("dataset", ctx.dataset)


@reference_app.command("train")
def reference_train(model: ModelArg) -> None:
    """Train the reference checkpoint (short, deterministic)."""
    from pipelines.reference import train

    ctx = _ctx(model)
    train(ctx)
    _done("checkpoint", ctx.checkpoint)


@app.command()
def repro(
    models: Annotated[list[str] | None, typer.Argument(help="Models to bring up to date (default: all).")] = None,
    dry: Annotated[bool, typer.Option("--dry", help="Only print which models DVC would be asked about.")] = False,
) -> None:
    """`dvc repro`, asked only about models whose inputs changed since their last successful run."""
    from pipelines.repro import run_repro

    sys.exit(run_repro(find_root(), models or None, dry=dry))


app.command("pin")(pin_cmd)
app.command("fetch")(fetch_cmd)
app.command("check-bundle")(check_bundle_cmd)


# Third-party noise that buries the stage lines of a run (mmengine's pkg_resources import, mmdet's
# autocast deprecation, onnxconverter-common's per-value fp16 truncation notes). MODELZOO_DEBUG=1 keeps it.
_NOISE = (
    (DeprecationWarning, ""),
    (PendingDeprecationWarning, ""),
    (FutureWarning, ""),
    (UserWarning, "pkg_resources is deprecated"),
    (UserWarning, r"the float32 number .* will be truncated to"),
)


def _quiet_third_party_warnings() -> None:
    if os.environ.get("MODELZOO_DEBUG"):
        return
    for category, message in _NOISE:
        warnings.filterwarnings("ignore", message=message, category=category)


def _configure_logging() -> None:
    level = os.environ.get("MODELZOO_LOG", "INFO").upper()
    logging.basicConfig(level=level, format="modelzoo: %(message)s", stream=sys.stderr)
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "asyncio", "fsspec", "aiobotocore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_app(func: Callable[[], Any]) -> None:
    """Run a CLI entry point: input errors become one line on stderr and an exit code."""
    _quiet_third_party_warnings()
    _configure_logging()
    try:
        func()
    except ModelzooError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        sys.exit(130)
    except Exception as err:
        if os.environ.get("MODELZOO_DEBUG"):
            raise
        first = str(err).splitlines()[0] if str(err) else ""
        typer.echo(f"error: {type(err).__name__}: {first} (set MODELZOO_DEBUG=1 for a traceback)", err=True)
        sys.exit(1)


def main() -> None:
    run_app(lambda: app(standalone_mode=True))


if __name__ == "__main__":
    main()
