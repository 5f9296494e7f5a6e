"""`modelzoo validate`: every descriptor, its task options, and its wiring in params.yaml."""

from __future__ import annotations

from pathlib import Path

from pipelines.descriptor import confined, list_models, load_descriptor, output_aliases
from pipelines.errors import DescriptorError
from pipelines.workspace import PARAMS_FILE, ModelContext, load_params


def check_wiring(root: Path, ctx: ModelContext, entry: dict[str, object]) -> None:
    """params.yaml wires a model's checkpoint and dataset into DVC; they must match the descriptor."""
    desc = ctx.descriptor
    for key in ("checkpoint", "dataset"):
        if isinstance(entry.get(key), str):
            confined(root, root, str(entry[key]), f"{PARAMS_FILE}: models.{ctx.name}.{key}")
    expect = {
        "checkpoint": str(ctx.checkpoint.relative_to(root)),
        "dataset": desc.evaluation.dataset,
    }
    for key, want in expect.items():
        got = entry.get(key)
        if got != want:
            raise DescriptorError(
                f"{PARAMS_FILE}: models.{ctx.name}.{key}: is {got!r}, {ctx.descriptor_file} says {want!r}"
            )
    if desc.reference is not None:
        made = {"checkpoint": f"artifacts/{ctx.name}/reference/checkpoint.pth", "dataset": f"data/{ctx.name}"}
        for key, want in made.items():
            if expect[key] != want:
                raise DescriptorError(f"{ctx.descriptor_file}: {key}: a reference model's {key} is made at {want!r}")


def check_output_names(ctx: ModelContext, checks: tuple[str, ...]) -> None:
    """Tolerance keys and report_only names must name a component output or one of the task's own
    checks (one rule, `output_aliases`): a misspelled key would otherwise leave the default in force."""
    desc = ctx.descriptor
    known = [*desc.all_outputs, *checks]
    names = {alias for key in known for alias in output_aliases(key)}
    for i, sc in enumerate(desc.verification.scenarios):
        for field, given in (("tolerances", list(sc.tolerances)), ("report_only", sc.report_only)):
            for name in given:
                if name not in names:
                    raise DescriptorError(
                        f"{ctx.descriptor_file}: verification.scenarios.{i}.{field}: '{name}' names no "
                        f"output (outputs: {', '.join(known)})"
                    )


def budget_warnings(ctx: ModelContext) -> list[str]:
    """`build.precisions` is the switch: a budget for a precision not built is kept (it applies again
    when the precision is built again) but checks nothing, which validate says. A budget for fp32, or
    for a built precision that no evaluation backend measures, would also check nothing: refused."""
    desc = ctx.descriptor
    where = f"{ctx.descriptor_file}: evaluation.budget"
    evaluated = {ep.precision for ep in desc.evaluation.backends}
    warnings = []
    for precision in desc.evaluation.budget:
        if precision == "fp32":
            raise DescriptorError(f"{where}.fp32: a budget is a drop vs fp32: fp32 has none")
        if precision not in desc.build.precisions:
            warnings.append(f"{where}.{precision}: {precision} is not in build.precisions: the budget is not checked")
        elif precision not in evaluated:
            raise DescriptorError(
                f"{where}.{precision}: no evaluation.backends entry measures {precision}: it would check nothing"
            )
    return warnings


def check_reference_list(root: Path, names: list[str], listed: list[str]) -> None:
    for name in listed:
        if load_descriptor(root, name).reference is None:
            raise DescriptorError(f"{PARAMS_FILE}: reference_models: {name} has no reference block")


def validate_all(root: Path, names: list[str] | None = None, warnings: list[str] | None = None) -> list[str]:
    from pipelines.tasks import get_task

    all_params = load_params(root)
    params = all_params["models"]
    listed = list(all_params.get("reference_models") or [])
    if names is None:
        names = sorted(set(list_models(root)) | set(params))
    for name in names:
        ctx = ModelContext(root, load_descriptor(root, name))
        task = get_task(ctx)  # validates task_options
        check_output_names(ctx, task.prediction_checks)
        if warnings is not None:
            warnings.extend(budget_warnings(ctx))
        else:
            budget_warnings(ctx)
        if name not in params:
            raise DescriptorError(f"{PARAMS_FILE}: models.{name}: missing (every model folder must be listed)")
        check_wiring(root, ctx, params[name] or {})
        if ctx.descriptor.reference is not None and name not in listed:
            raise DescriptorError(f"{PARAMS_FILE}: reference_models: {name} is a reference model, not listed")
    check_reference_list(root, names, [n for n in listed if n in names])
    return names
