"""The model descriptor `models/<name>/model.yaml`: schema, loading and one-line errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import semver
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipelines.errors import DescriptorError, format_validation_error
from pipelines.yamlio import load_yaml

MODELS_DIR = "models"
DESCRIPTOR_FILE = "model.yaml"

TaskName = Literal["classification", "detection2d", "detection3d"]


def _one_of(known: tuple[str, ...], what: str) -> AfterValidator:
    def check(v: str) -> str:
        if v not in known:
            raise ValueError(f"'{v}' is not a {what} ({', '.join(known)})")
        return v

    return AfterValidator(check)


# The runtimes model.yaml may name. The descriptor owns these names (runtimes import the descriptor,
# not the other way round); tests/test_descriptor.py checks that pipelines/runtimes has exactly these
# backends (a runtime with session.py) and targets (one with build.py and probe.py).
BACKENDS = ("pytorch", "onnxruntime", "tensorrt", "tensorrt_rtx")
TARGETS = ("onnxruntime", "tensorrt", "tensorrt_rtx")
# TensorRT-RTX compute capabilities a CPU build can target (the builder's ComputeCapability enum), and
# the default: those its runtime runs on ("Supported compute capabilities: 8.0 8.6 8.9 12.0 12.1 >12.0",
# measured on an H200; pipelines/runtimes/tensorrt_rtx/probe.py).
RTX_BUILDABLE = ("sm75", "sm80", "sm86", "sm89", "sm120", "sm121")
RTX_DEFAULT_CAPABILITIES = ("sm80", "sm86", "sm89", "sm120")

BackendName = Annotated[str, _one_of(BACKENDS, "backend")]
TargetName = Annotated[str, _one_of(TARGETS, "build target")]
Precision = Literal["fp32", "fp16", "int8"]
DType = Literal["float32", "float16", "int32", "int64", "uint8", "bool"]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorSpec(Strict):
    name: Name
    dtype: DType = "float32"
    # An int is a fixed size; a string names a dynamic axis (e.g. "num_voxels").
    shape: list[int | Name]

    @field_validator("shape")
    @classmethod
    def _sizes(cls, v: list[int | str]) -> list[int | str]:
        for i, d in enumerate(v):
            if isinstance(d, int) and d < 1:
                raise ValueError(f"axis {i} has size {d}: a size is >= 1, or a name for a dynamic axis")
        return v

    @property
    def dynamic_axes(self) -> dict[int, str]:
        return {i: d for i, d in enumerate(self.shape) if isinstance(d, str)}


class AxisRange(Strict):
    """min/opt/max of one dynamic axis, for TensorRT optimization profiles."""

    min: int = Field(ge=1)
    opt: int = Field(ge=1)
    max: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> AxisRange:
        if not self.min <= self.opt <= self.max:
            raise ValueError(f"needs min <= opt <= max, got {self.min}/{self.opt}/{self.max}")
        return self


class Component(Strict):
    """One ONNX file of the model (CenterPoint has two, most models one)."""

    name: Name
    inputs: list[TensorSpec] = Field(min_length=1)
    outputs: list[TensorSpec] = Field(min_length=1)
    opset: int = Field(17, ge=11, le=23)
    # Ranges for the dynamic axes named in `inputs`, keyed by axis name.
    dynamic_ranges: dict[str, AxisRange] = {}

    @model_validator(mode="after")
    def _ranges_name_axes(self) -> Component:
        axes = {a for t in self.inputs for a in t.dynamic_axes.values()}
        unknown = sorted(set(self.dynamic_ranges) - axes)
        if unknown:
            raise ValueError(f"dynamic_ranges names {unknown}, not a dynamic input axis ({sorted(axes)})")
        unranged = sorted(axes - set(self.dynamic_ranges))
        if unranged:
            raise ValueError(f"dynamic input axes {unranged} need dynamic_ranges (min/opt/max of each)")
        names = [t.name for t in [*self.inputs, *self.outputs]]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"tensor names repeated: {dupes}")
        return self


class Source(Strict):
    """Where the PyTorch model comes from."""

    kind: Literal["torch", "mmdet", "mmdet3d"]
    # torch: "module:function" or "file.py:function" (relative to the model folder).
    factory: str | None = None
    # mmdet/mmdet3d: an OpenMMLab config, relative to the model folder.
    config: str | None = None
    # Relative to the repository root (DVC-tracked, or made by a reference training stage).
    checkpoint: str
    factory_args: dict[str, Any] = {}

    @model_validator(mode="after")
    def _kind_fields(self) -> Source:
        if self.kind == "torch":
            if not self.factory or not re.fullmatch(r"[\w./-]+:\w+", self.factory):
                raise ValueError("kind 'torch' needs factory: 'module:function' or 'file.py:function'")
        elif not self.config:
            raise ValueError(f"kind '{self.kind}' needs config: an OpenMMLab config file")
        return self


class Tolerance(Strict):
    atol: float = Field(1e-4, ge=0)
    rtol: float = Field(1e-3, ge=0)


class Endpoint(Strict):
    backend: BackendName
    device: str = "cpu"
    precision: Precision = "fp32"

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not re.fullmatch(r"cpu|cuda(:\d+)?", v):
            raise ValueError(f"'{v}' is not a device (cpu, cuda, cuda:N)")
        return v

    @property
    def key(self) -> str:
        return f"{self.backend}-{self.device.replace(':', '')}-{self.precision}"


class Scenario(Strict):
    ref: Endpoint
    test: Endpoint
    samples: int | None = Field(None, ge=1)
    # Per-output tolerance, keyed "<component>.<output>" or "<output>"; the rest use `default`.
    tolerances: dict[str, Tolerance] = {}
    default: Tolerance = Tolerance()
    # Outputs (same keys as `tolerances`) measured and reported but not deciding the scenario: for an
    # error no bound describes, e.g. the yaw of near-square boxes under int8.
    report_only: list[str] = []

    @property
    def key(self) -> str:
        return f"{self.ref.key}_vs_{self.test.key}"


class Verification(Strict):
    samples: int = Field(4, ge=1)
    scenarios: list[Scenario] = Field(min_length=1)


class Evaluation(Strict):
    # A dataset folder, relative to the repository root.
    dataset: str
    split: str = "val"
    samples: int = Field(-1, ge=-1)  # -1: the whole split
    backends: list[Endpoint] = Field(min_length=1)
    warmup: int = Field(3, ge=0)
    # Metric shown in MODELS.md and release notes.
    headline: str
    # Largest allowed drop of the headline metric for a precision, vs fp32 (same backend).
    budget: dict[Precision, float] = {}


class Build(Strict):
    targets: list[TargetName] = ["onnxruntime"]
    precisions: list[Precision] = ["fp32"]
    simplify: bool = True
    # Op types kept in fp32 by the fp16 conversion, on top of the tool's own list.
    fp16_block_list: list[str] = []
    calibration_samples: int = Field(16, ge=1)
    # int8 activation ranges: MinMax works for any input; Percentile and Entropy (histograms) need
    # every calibration feed of a component to have one shape.
    calibration_method: Literal["MinMax", "Percentile", "Entropy"] = "MinMax"
    # ONNX node names (fnmatch patterns) kept in floating point by the int8 policy.
    int8_exclude: list[str] = []
    workspace_mib: int = Field(1024, ge=64)
    hardware_compatible: bool = False
    version_compatible: bool = False
    # tensorrt_rtx: the compute capabilities its CPU build makes an engine for, one folder each.
    rtx_compute_capabilities: list[Annotated[str, _one_of(RTX_BUILDABLE, "TensorRT-RTX compute capability")]] = Field(
        list(RTX_DEFAULT_CAPABILITIES), min_length=1
    )

    @field_validator("precisions")
    @classmethod
    def _fp32_first(cls, v: list[str]) -> list[str]:
        if "fp32" not in v:
            raise ValueError("fp32 must be listed: other precisions are checked against it")
        return v


class Provenance(Strict):
    training_config: str | None = None
    training_log: str | None = None
    dataset_ids: list[str] = []


class Reference(Strict):
    """Bundled reference models only: a data stage and a training stage make data and checkpoint."""

    module: str = "reference.py"
    seed: int = 0
    options: dict[str, Any] = {}
    # fnmatch patterns of model-folder files that data and training never read (export-only code):
    # left out of the recipe, so editing them re-exports without retraining.
    exclude: list[str] = []


class Autoware(Strict):
    """The Autoware package whose data folder (and Hugging Face repository) holds this model's files.

    One package may hold several models (tensorrt_yolox does); Autoware reads them from
    `<data_dir>/<package>/<file>`, downloaded from the Hub repository `<repository>`.
    """

    package: Name
    # "<org>/<name>" on the Hugging Face Hub; default AutowareFoundation/<package>.
    repository: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")] | None = None

    @property
    def repo_id(self) -> str:
        return self.repository or f"AutowareFoundation/{self.package}"


class Descriptor(Strict):
    name: Name
    algorithm: Name
    task: TaskName
    version: str
    description: str = ""
    source: Source
    components: list[Component] = Field(min_length=1)
    build: Build = Build()
    verification: Verification
    evaluation: Evaluation
    provenance: Provenance = Provenance()
    # Task-specific settings (class names, normalization...), checked by the task's own schema.
    task_options: dict[str, Any] = {}
    reference: Reference | None = None
    autoware: Autoware | None = None

    @field_validator("version")
    @classmethod
    def _semver(cls, v: str) -> str:
        if not semver.Version.is_valid(v):
            raise ValueError(f"'{v}' is not a semantic version X.Y.Z")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Descriptor:
        names = [c.name for c in self.components]
        if len(set(names)) != len(names):
            raise ValueError(f"components: names repeated: {names}")
        for i, sc in enumerate(self.verification.scenarios):
            for side in ("ref", "test"):
                ep: Endpoint = getattr(sc, side)
                if ep.backend in TARGETS and ep.backend not in self.build.targets:
                    raise ValueError(f"verification.scenarios.{i}.{side}: {ep.backend} is not a build target")
                if ep.precision not in self.build.precisions:
                    raise ValueError(f"verification.scenarios.{i}.{side}.precision: '{ep.precision}' is not built")
        for i, ep in enumerate(self.evaluation.backends):
            if ep.precision not in self.build.precisions:
                raise ValueError(f"evaluation.backends.{i}.precision: '{ep.precision}' is not built")
        return self

    @property
    def all_outputs(self) -> list[str]:
        return [f"{c.name}.{o.name}" for c in self.components for o in c.outputs]


def output_aliases(key: str) -> tuple[str, str]:
    """How a descriptor may name an output `key` ("<component>.<output>", or a task check such as
    "boxes.center") in `tolerances` and `report_only`: in full, or by its last part; the full name wins."""
    return key, key.split(".", 1)[-1]


def model_dir(root: Path, name: str) -> Path:
    return root / MODELS_DIR / name


def descriptor_path(root: Path, name: str) -> Path:
    return model_dir(root, name) / DESCRIPTOR_FILE


def parse_descriptor(data: Any, path: str) -> Descriptor:
    if not isinstance(data, dict):
        raise DescriptorError(f"{path}: (top level): expected a mapping, got {type(data).__name__}")
    try:
        return Descriptor.model_validate(data)
    except ValidationError as err:
        raise DescriptorError(format_validation_error(path, err)) from None


def load_descriptor(root: Path, name: str) -> Descriptor:
    """Load and validate `models/<name>/model.yaml`; raises DescriptorError with a one-line message."""
    path = descriptor_path(root, name)
    rel = f"{MODELS_DIR}/{name}/{DESCRIPTOR_FILE}"
    if not path.is_file():
        known = ", ".join(list_models(root)) or "none"
        raise DescriptorError(f"{rel}: unknown model '{name}' (known: {known})")
    data = load_yaml(path, rel)
    desc = parse_descriptor(data, rel)
    if desc.name != name:
        raise DescriptorError(f"{rel}: name: '{desc.name}' differs from its folder name '{name}'")
    check_paths(root, desc, rel)
    return desc


def confined(root: Path, base: Path, value: str, where: str) -> Path:
    """`base / value`, which must stay inside the repository `root` after `..` and symlinks."""
    top = root.resolve()
    if Path(value).is_absolute() or value.startswith("~"):
        raise DescriptorError(f"{where}: {value!r}: must be a path relative to the repository, not absolute")
    path = (base / value).resolve()
    if not path.is_relative_to(top):
        raise DescriptorError(f"{where}: {value!r}: resolves outside the repository ({path})")
    return path


def descriptor_paths(desc: Descriptor) -> list[tuple[str, str, bool]]:
    """(dotted field, value, relative to the model folder?) of every path a descriptor names."""
    src, prov = desc.source, desc.provenance
    found = [("source.checkpoint", src.checkpoint, False), ("evaluation.dataset", desc.evaluation.dataset, False)]
    if src.config:
        found.append(("source.config", src.config, True))
    if src.factory and src.factory.partition(":")[0].endswith(".py"):
        found.append(("source.factory", src.factory.partition(":")[0], True))
    if prov.training_config:
        found.append(("provenance.training_config", prov.training_config, False))
    if prov.training_log:
        found.append(("provenance.training_log", prov.training_log, False))
    if desc.reference is not None:
        found.append(("reference.module", desc.reference.module, True))
    return found


def check_paths(root: Path, desc: Descriptor, rel: str) -> None:
    """Every path the descriptor names resolves inside the repository: a descriptor edit cannot make
    the pipeline read, or `publish` upload, a file from elsewhere on the machine."""
    folder = model_dir(root, desc.name)
    for field, value, in_folder in descriptor_paths(desc):
        confined(root, folder if in_folder else root, value, f"{rel}: {field}")


def list_models(root: Path) -> list[str]:
    base = root / MODELS_DIR
    if not base.is_dir():
        return []
    return sorted(p.parent.name for p in base.glob(f"*/{DESCRIPTOR_FILE}"))
