"""Play a workflow's jobs locally, `run:` step by `run:` step, as read from the YAML.

The rehearsal (scripts/rehearse-release) drives this so that what it tests is what the workflow
files say. A job gets a fresh clone of the local origin; each `run:` runs in bash with the
workflow/job/step `env:`, `${{ }}` expressions substituted, $GITHUB_OUTPUT read back into
`steps.<id>.outputs` and the job's `outputs:`. The artifact actions are emulated with a folder (so
matrix legs hand their results to the publish job), steps with an id in `replace` are swapped for
the given local equivalent, and every other `uses:` step (caches, Python setup, AWS OIDC, ...) is
skipped and listed with its reason.
"""

from __future__ import annotations

import fnmatch
import itertools
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.ci.outputs import parse_outputs
from pipelines.errors import ModelzooError
from pipelines.yamlio import load_yaml

from .expressions import condition, substitute, text_of, value_of

SKIP_REASONS = {
    "actions/cache": "GitHub's cache service: every local job starts cold",
    "actions/setup-python": "the rehearsal runs this interpreter",
    "aws-actions/configure-aws-credentials": "AWS OIDC role: the local S3 server takes static test credentials",
}


@dataclass
class Step:
    job: str
    name: str
    kind: str  # run | emulated | replaced | skipped (not played here) | condition (its `if:` was false)
    outcome: str = "success"  # success | failure | skipped
    seconds: float = 0.0
    note: str = ""
    log: Path | None = None


@dataclass
class Job:
    name: str
    leg: dict[str, Any]
    outcome: str = "success"
    outputs: dict[str, str] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    workspace: Path | None = None


@dataclass
class Run:
    workflow: str
    event: dict[str, Any]
    triggered: bool = True
    reason: str = ""
    jobs: list[Job] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(j.outcome in ("success", "skipped") for j in self.jobs)

    def failed_step(self) -> Step | None:
        return next((s for j in self.jobs for s in j.steps if s.outcome == "failure"), None)

    def failure_text(self) -> str:
        step = self.failed_step()
        return step.log.read_text() if step and step.log else ""

    def job(self, name: str) -> list[Job]:
        return [j for j in self.jobs if j.name == name]


def load_workflow(path: Path) -> dict[str, Any]:
    data = load_yaml(path, error=ModelzooError)
    if not isinstance(data, dict):
        raise ModelzooError(f"{path}: expected a workflow mapping (on, jobs)")
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads `on` as True
    return data


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _topo(jobs: dict[str, Any]) -> list[str]:
    order: list[str] = []
    pending = dict(jobs)
    while pending:
        ready = [n for n, j in pending.items() if all(d in order for d in _needs(j))]
        if not ready:
            raise ValueError(f"jobs {sorted(pending)}: circular or unknown needs")
        order += ready
        for n in ready:
            del pending[n]
    return order


def _needs(job: dict[str, Any]) -> list[str]:
    needs = job.get("needs") or []
    return [needs] if isinstance(needs, str) else list(needs)


def _legs(strategy: dict[str, Any] | None, context: dict[str, Any]) -> list[dict[str, Any]]:
    if not strategy or "matrix" not in strategy:
        return [{}]
    matrix = value_of(strategy["matrix"], context) or {}
    include = list(matrix.pop("include", []) or [])
    matrix.pop("exclude", None)
    axes = {k: v for k, v in matrix.items() if isinstance(v, list)}
    legs = [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())] if axes else []
    return legs + include if legs or include else [{}]


class Player:
    def __init__(
        self,
        origin: Path,
        workdir: Path,
        *,
        repository: str = "rehearsal/modelzoo",
        variables: dict[str, str] | None = None,
        secrets: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
        replace: dict[str, tuple[str, dict[str, str]]] | None = None,
        skip_jobs: dict[str, str] | None = None,
    ) -> None:
        self.origin, self.workdir = origin, workdir
        self.repository = repository
        self.variables = variables or {}
        self.secrets = secrets or {}
        self.env = env or {}
        # step id -> (why, env additions) for steps the rehearsal swaps for a local equivalent
        self.replace = replace or {}
        # job name -> why it is not played (e.g. it talks to GitHub's API)
        self.skip_jobs = skip_jobs or {}
        self.counter = 0

    # -- triggers --------------------------------------------------------------------------------

    def triggers(self, wf: dict[str, Any], event: dict[str, Any]) -> tuple[bool, str]:
        on = wf["on"]
        spec = (on or {}).get(event["name"]) if isinstance(on, dict) else None
        if event["name"] not in (on if isinstance(on, (dict, list)) else [on]):
            return False, f"not an `on: {event['name']}` workflow"
        spec = spec or {}
        if "[skip ci]" in event.get("message", ""):
            return False, "the head commit says [skip ci]"
        if event["name"] == "pull_request":
            branches = spec.get("branches")
            ok = not branches or any(fnmatch.fnmatchcase(event["base_ref"], b) for b in branches)
            return ok, "" if ok else f"base branch {event['base_ref']} not in {branches}"
        ref: str = event["ref"]
        if ref.startswith("refs/tags/"):
            tags = spec.get("tags")
            ok = tags is not None and any(fnmatch.fnmatchcase(ref.removeprefix("refs/tags/"), t) for t in tags)
            return ok, "" if ok else "tag pushes do not start it"
        branches = spec.get("branches")
        if branches is None or not any(fnmatch.fnmatchcase(ref.removeprefix("refs/heads/"), b) for b in branches):
            return False, f"{ref} is not one of its branches"
        ignore = spec.get("paths-ignore") or []
        changed = event.get("changed")
        if ignore and changed and all(any(fnmatch.fnmatchcase(f, p) for p in ignore) for f in changed):
            return False, "only paths-ignore'd files changed"
        return True, ""

    # -- a run -----------------------------------------------------------------------------------

    def play(self, path: Path, event: dict[str, Any]) -> Run:
        wf = load_workflow(path)
        run = Run(workflow=path.name, event=event)
        run.triggered, run.reason = self.triggers(wf, event)
        if not run.triggered:
            return run
        self.counter += 1
        base = self.workdir / f"{self.counter:02d}-{path.stem}"
        (base / "artifacts").mkdir(parents=True)
        started = time.monotonic()
        ctx_base = self._context(event)
        needs: dict[str, Any] = {}
        for name in _topo(wf["jobs"]):
            spec = wf["jobs"][name]
            ctx = {**ctx_base, "needs": {n: needs[n] for n in _needs(spec)}}
            upstream_ok = all(needs[n]["result"] == "success" for n in _needs(spec))
            if name in self.skip_jobs:
                step = Step(name, f"job {path.name}:{name}", "skipped", "skipped", note=self.skip_jobs[name])
                run.jobs.append(Job(name=name, leg={}, outcome="skipped", steps=[step]))
                needs[name] = {"result": "success", "outputs": {}}
                continue
            if not condition(spec.get("if"), ctx, "success" if upstream_ok else "failure"):
                run.jobs.append(Job(name=name, leg={}, outcome="skipped"))
                needs[name] = {"result": "skipped", "outputs": {}}
                continue
            legs = [self._job(base, wf, name, spec, leg, ctx) for leg in _legs(spec.get("strategy"), ctx)]
            run.jobs += legs
            result = "failure" if any(j.outcome == "failure" for j in legs) else "success"
            needs[name] = {"result": result, "outputs": legs[-1].outputs}
        run.seconds = time.monotonic() - started
        return run

    def _context(self, event: dict[str, Any]) -> dict[str, Any]:
        ref = event.get("ref", "")
        github = {
            "sha": event["sha"],
            "ref": ref,
            "ref_name": ref.rpartition("/")[2] if ref.startswith("refs/tags/") else ref.removeprefix("refs/heads/"),
            "ref_type": "tag" if ref.startswith("refs/tags/") else "branch",
            "event_name": event["name"],
            "repository": self.repository,
            "base_ref": event.get("base_ref", ""),
            "head_ref": event.get("head_ref", ""),
            "token": "rehearsal-token",
            "event": event.get("payload", {}),
        }
        return {
            "github": github,
            "vars": self.variables,
            "secrets": self.secrets,
            "runner": {"os": "Linux", "arch": "X64"},
        }

    def _job(self, base: Path, wf: dict[str, Any], name: str, spec: dict[str, Any], leg: dict[str, Any],
             ctx: dict[str, Any]) -> Job:  # fmt: skip
        label = name + ("-" + "-".join(str(v) for k, v in leg.items() if not isinstance(v, list)) if leg else "")
        job = Job(name=name, leg=leg, workspace=base / label)
        ws = job.workspace
        assert ws is not None
        ws.mkdir(parents=True)
        (base / "logs").mkdir(exist_ok=True)
        ctx = {**ctx, "matrix": leg, "steps": {}}
        env = {**self.env}
        for scope in (wf.get("env") or {}, spec.get("env") or {}):
            env.update({k: text_of(v, {**ctx, "env": env}) for k, v in scope.items()})
        extra_path: list[str] = []
        status = "success"
        for i, step in enumerate(spec.get("steps", [])):
            title = step.get("name") or step.get("id") or (step.get("uses") or step.get("run", "")).splitlines()[0]
            if not condition(step.get("if"), {**ctx, "env": env}, status):
                job.steps.append(Step(name, title, "condition", "skipped", note="if: false"))
                continue
            t0 = time.monotonic()
            if "uses" in step:
                rec = self._uses(base, ws, step, {**ctx, "env": env}, job)
            elif step.get("id") in self.replace:
                why, additions = self.replace[step["id"]]
                for key, value in additions.items():
                    if key == "PATH":
                        extra_path.insert(0, value)
                    else:
                        env[key] = value
                rec = Step(name, title, "replaced", note=why)
            else:
                rec = self._run(base, ws, step, title, i, {**ctx, "env": env}, env, extra_path, job)
            rec.seconds = time.monotonic() - t0
            job.steps.append(rec)
            if rec.outcome == "failure" and not step.get("continue-on-error"):
                status = "failure"
        job.outcome = status
        job.outputs = {k: text_of(v, ctx) for k, v in (spec.get("outputs") or {}).items()}
        return job

    def _uses(self, base: Path, ws: Path, step: dict[str, Any], ctx: dict[str, Any], job: Job) -> Step:
        action = step["uses"].split("@")[0]
        args = {k: value_of(v, ctx) for k, v in (step.get("with") or {}).items()}
        store = base / "artifacts"
        if action == "actions/checkout":
            ref = args.get("ref") or ctx["github"]["sha"]
            _git(ws.parent, "clone", "-q", str(self.origin), ws.name)
            _git(ws, "checkout", "-q", str(ref))
            return Step(job.name, f"checkout {ref}", "emulated", note="git clone of the local origin")
        if action == "actions/upload-artifact":
            dest = store / str(args["name"])
            shutil.copytree(ws / str(args["path"]), dest)
            return Step(job.name, f"upload {args['name']}", "emulated", note="artifact folder")
        if action == "actions/download-artifact":
            target = ws / str(args.get("path") or ".")
            target.mkdir(parents=True, exist_ok=True)
            if args.get("name"):
                shutil.copytree(store / str(args["name"]), target, dirs_exist_ok=True)
            else:
                for art in sorted(store.iterdir()):
                    if fnmatch.fnmatchcase(art.name, str(args.get("pattern") or "*")):
                        shutil.copytree(art, target / art.name)
            return Step(job.name, f"download {args.get('name') or args.get('pattern')}", "emulated")
        why = SKIP_REASONS.get(action, "a GitHub-hosted action")
        return Step(job.name, step["uses"], "skipped", "skipped", note=why)

    def _run(self, base: Path, ws: Path, step: dict[str, Any], title: str, index: int, ctx: dict[str, Any],
             env: dict[str, str], extra_path: list[str], job: Job) -> Step:  # fmt: skip
        script = substitute(str(step["run"]), ctx)
        tmp = base / "tmp" / f"{ws.name}-{index}"
        tmp.mkdir(parents=True)
        out_file, path_file = tmp / "output", tmp / "path"
        out_file.touch()
        path_file.touch()
        github = ctx["github"]
        step_env = {k: text_of(v, ctx) for k, v in (step.get("env") or {}).items()}
        full = {
            **os.environ,
            **env,
            **step_env,
            "PATH": os.pathsep.join([*extra_path, os.environ.get("PATH", "")]),
            "PYTHONPATH": str(ws),  # the code under test is the workspace's, not the installed one
            "CI": "true",
            "GITHUB_OUTPUT": str(out_file),
            "GITHUB_PATH": str(path_file),
            "GITHUB_SHA": github["sha"],
            "GITHUB_REF": github["ref"],
            "GITHUB_REF_NAME": github["ref_name"],
            "GITHUB_BASE_REF": github["base_ref"],
            "GITHUB_REPOSITORY": github["repository"],
            "GITHUB_WORKSPACE": str(ws),
            "RUNNER_TEMP": str(tmp),
        }
        log = base / "logs" / f"{ws.name}-{index:02d}.log"
        with log.open("w") as f:
            f.write(f"$ {script}\n")
            f.flush()
            proc = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                cwd=ws, env=full, stdout=f, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
        extra_path[:0] = [p for p in path_file.read_text().splitlines() if p]
        outcome = "success" if proc.returncode == 0 else "failure"
        if "id" in step:
            ctx_steps = ctx["steps"]
            ctx_steps[step["id"]] = {
                "outputs": parse_outputs(out_file.read_text()),
                "outcome": outcome,
                "conclusion": "success" if step.get("continue-on-error") else outcome,
            }
        return Step(job.name, title, "run", outcome, note=f"exit {proc.returncode}", log=log)
