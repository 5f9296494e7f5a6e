"""The Hugging Face Hub channel: one git repository per Autoware package, a tag `vX.Y` per X.Y.0 release.

Autoware's ansible `artifacts` role runs `hf download AutowareFoundation/<package> --revision vX.Y
--local-dir <data_dir>/<package>`, so a release reaches Autoware as a tag on the package's repository
holding the package folder of pipelines/registry/layout.py (the files, the release manifest, a record).

- Only X.Y.0 gets a tag: Autoware pins major.minor, and a Z>0 release serves X.Y.0's files (rule Z).
  Publishing X.Y.Z with Z>0 publishes X.Y.0 (a no-op when `vX.Y` is there): no tag of its own,
  nothing moves.
- A tag is never moved. An existing `vX.Y` holding the files the release would put there is left as it
  is (publishing again is a no-op); one holding other files is refused, before any repository is written.
- A package whose files did not change since the repository's head gets the tag on that commit, with no
  new commit (its manifest stays that of the release that last changed the files: same bytes).
- The push is plain git + git-lfs over HTTPS: files of `lfs_threshold` bytes or more go through LFS
  (named one by one in `.gitattributes`). The token comes from $HF_TOKEN and reaches git through
  environment-only configuration (an `http.<hub>/.extraheader`), never a command line or a URL; any
  message that would carry it is redacted.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import semver

from pipelines.errors import ModelzooError
from pipelines.fileio import CHUNK
from pipelines.registry.layout import (
    BUNDLE_MANIFEST,
    BUNDLE_RECORD,
    BUNDLE_SIGNATURE,
    RESERVED,
    BundleFile,
    bundle_files,
    bundle_record,
    packages,
    repository,
)
from pipelines.registry.manifest import Manifest, manifest_path
from pipelines.registry.releases import check_version, fetch_manifest
from pipelines.registry.signing import read_signature
from pipelines.registry.stores import RegistryError, Store

log = logging.getLogger(__name__)

HUB_URL = "https://huggingface.co"
TOKEN_ENV = "HF_TOKEN"
# The Hub refuses plain git files over 10 MiB; binaries are better in LFS well below that.
LFS_THRESHOLD = 1 << 20
BRANCH = "main"
_LFS_POINTER = re.compile(rb"^version https://git-lfs\.github\.com/spec/v1\noid sha256:([0-9a-f]{64})\nsize (\d+)\n$")


class TagConflict(RegistryError):
    """An existing tag holds other files: tags are never moved."""


@dataclass
class RepoResult:
    package: str
    repository: str
    tag: str
    # committed: a new commit and the tag; tagged: the tag on the unchanged head; unchanged: the tag was there.
    state: Literal["committed", "tagged", "unchanged"]
    commit: str
    files: int
    lfs_files: int = 0
    bytes: int = 0
    seconds: float = 0.0


@dataclass
class HubPublish:
    version: str
    released: str  # the X.Y.0 whose files the tag holds
    tag: str
    repos: list[RepoResult] = field(default_factory=list)


def hub_tag(version: str) -> str:
    v = semver.Version.parse(version)
    return f"v{v.major}.{v.minor}"


def ansible_entries(manifest: Manifest, version: str, models: list[str] | None = None) -> list[str]:
    """`- { repo: <package>, revision: vX.Y }` lines for Autoware's ansible artifacts role."""
    revision = hub_tag(check_version(version))
    lines = []
    for package, names in packages(manifest).items():
        if models is not None and not set(names) & set(models):
            continue
        repo = repository(manifest, package)
        org, name = repo.split("/", 1)
        line = f"- {{ repo: {name}, revision: {revision} }}"
        if org != "AutowareFoundation":
            line += f"  # from {repo}: the role downloads from AutowareFoundation/ only"
        lines.append(line)
    if not lines:
        raise ModelzooError(f"release {version}: no model names an Autoware package (descriptor field autoware)")
    return lines


class _Git:
    """git in one work folder, with the token in the environment only and out of every message."""

    def __init__(self, cwd: Path, hub_url: str, token: str | None) -> None:
        self.cwd, self.token = cwd, token
        self.env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_LFS_SKIP_SMUDGE": "1"}
        for k in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
            self.env.pop(k, None)
        if token and hub_url.startswith("https://"):
            basic = base64.b64encode(f"modelzoo:{token}".encode()).decode()
            self.env.update(
                GIT_CONFIG_COUNT="1",
                GIT_CONFIG_KEY_0=f"http.{hub_url.rstrip('/')}/.extraheader",
                GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}",
            )

    def redact(self, text: str) -> str:
        return text.replace(self.token, "***") if self.token else text

    def run(self, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        cmd = ["git", "-c", "user.name=modelzoo", "-c", "user.email=modelzoo@localhost", *args]
        done = subprocess.run(cmd, cwd=self.cwd, env=self.env, input=input, capture_output=True)
        if check and done.returncode != 0:
            lines = [ln for ln in done.stderr.decode(errors="replace").splitlines() if ln.strip()]
            why = lines[-1].strip() if lines else f"exit {done.returncode}"
            raise RegistryError(self.redact(f"git {args[0]}: {why}"))
        return done

    def out(self, *args: str) -> str:
        return self.run(*args).stdout.decode().strip()


def _tree_digests(git: _Git, commit: str) -> dict[str, str]:
    """File name -> sha256 of its content in a commit (an LFS pointer's oid is that sha256)."""
    listing = git.out("ls-tree", "-r", "-z", commit)
    blobs = {}
    for item in filter(None, listing.split("\0")):
        meta, path = item.split("\t", 1)
        if meta.split()[1] == "blob" and path not in RESERVED:
            blobs[path] = meta.split()[2]
    if not blobs:
        return {}
    raw = git.run("cat-file", "--batch", input="".join(f"{b}\n" for b in blobs.values()).encode()).stdout
    out, pos = {}, 0
    for path in blobs:
        header_end = raw.index(b"\n", pos)
        size = int(raw[pos:header_end].split()[2])
        data = raw[header_end + 1 : header_end + 1 + size]
        pos = header_end + 2 + size
        m = _LFS_POINTER.match(data)
        out[path] = m.group(1).decode() if m else hashlib.sha256(data).hexdigest()
    return out


@dataclass
class _Plan:
    package: str
    repository: str
    url: str
    files: dict[str, BundleFile]
    git: _Git
    head: str | None
    state: Literal["committed", "tagged", "unchanged"]
    commit: str = ""


def _remote_refs(git: _Git, url: str) -> dict[str, str]:
    refs = {}
    for line in git.out("ls-remote", url).splitlines():
        sha, ref = line.split("\t", 1)
        refs[ref] = sha
    return refs


def _plan(store_manifest: Manifest, package: str, hub_url: str, token: str | None, work: Path, tag: str) -> _Plan:
    repo = repository(store_manifest, package)
    url = f"{hub_url.rstrip('/')}/{repo}"
    files = bundle_files(store_manifest, package)
    want = {n: b.entry.sha256 for n, b in files.items()}
    folder = work / package
    folder.mkdir()
    git = _Git(folder, hub_url, token)
    git.run("init", "-q", "-b", BRANCH)
    git.run("lfs", "install", "--local")
    refs = _remote_refs(git, url)
    head = refs.get(f"refs/heads/{BRANCH}")
    tagged = refs.get(f"refs/tags/{tag}^{{}}") or refs.get(f"refs/tags/{tag}")
    if head:
        git.run("fetch", "-q", "--no-tags", url, f"+refs/heads/{BRANCH}:refs/remotes/origin/{BRANCH}")
    if tagged:
        git.run("fetch", "-q", "--no-tags", url, f"+refs/tags/{tag}:refs/tags/{tag}")
        if _tree_digests(git, tagged) != want:
            raise TagConflict(
                f"{url}: tag {tag} already exists ({tagged[:12]}) with other files: a tag is never moved, "
                "release a new X.Y"
            )
        return _Plan(package, repo, url, files, git, head, "unchanged", tagged)
    if head and _tree_digests(git, head) == want:
        return _Plan(package, repo, url, files, git, head, "tagged", head)
    return _Plan(package, repo, url, files, git, head, "committed")


def _copy_verified(store: Store, b: BundleFile, dest: Path) -> None:
    digest, size = hashlib.sha256(), 0
    with store.open_read(b.entry.path) as src, open(dest, "wb") as dst:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            dst.write(chunk)
    if (digest.hexdigest(), size) != (b.entry.sha256, b.entry.size):
        raise ModelzooError(f"{store.url}/{b.entry.path}: sha256 or size differs from the manifest", exit_code=6)


def _commit(plan: _Plan, store: Store, manifest: Manifest, manifest_bytes: bytes, lfs_threshold: int) -> RepoResult:
    git, folder = plan.git, plan.git.cwd
    if plan.head:
        git.run("checkout", "-q", "-B", BRANCH, f"origin/{BRANCH}")
        git.run("rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", ".", ":!README.md")
        for p in folder.iterdir():
            if p.name not in (".git", "README.md"):  # the model card is the maintainers', not ours
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    lfs = sorted(n for n, b in plan.files.items() if b.entry.size >= lfs_threshold)
    attributes = "".join(f"/{n} filter=lfs diff=lfs merge=lfs -text\n" for n in lfs)
    (folder / ".gitattributes").write_text(attributes)
    for name, b in plan.files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        _copy_verified(store, b, folder / name)
    (folder / BUNDLE_MANIFEST).write_bytes(manifest_bytes)
    if (signature := read_signature(store, manifest.version)) is not None:
        (folder / BUNDLE_SIGNATURE).write_bytes(signature)
    (folder / BUNDLE_RECORD).write_text(bundle_record(manifest, plan.package, plan.files))
    git.run("add", "-A")
    models = sorted({b.model for b in plan.files.values()})
    git.run("commit", "-q", "-m", f"modelzoo release {manifest.version}: {', '.join(models)}")
    plan.commit = git.out("rev-parse", "HEAD")
    return RepoResult(
        plan.package, plan.repository, "", "committed", plan.commit, len(plan.files), len(lfs),
        sum(b.entry.size for b in plan.files.values()),
    )  # fmt: skip


def publish_hub(
    store: Store,
    version: str,
    *,
    hub_url: str = HUB_URL,
    token: str | None = None,
    lfs_threshold: int = LFS_THRESHOLD,
    only: list[str] | None = None,
) -> HubPublish:
    """Tag release `version` (X.Y.Z) as vX.Y on the Hub repository of every Autoware package it holds."""
    version = check_version(version)
    parsed = semver.Version.parse(version)
    released = f"{parsed.major}.{parsed.minor}.0"
    key = manifest_path(released)
    if store.stat(key) is None:
        raise RegistryError(f"{store.url}/{key}: not found (release {released}, which vX.Y tags)")
    manifest, manifest_bytes = fetch_manifest(store, released)
    tag = hub_tag(released)
    result = HubPublish(version, released, tag)
    chosen = [p for p in packages(manifest) if only is None or p in only]
    if only is not None and (unknown := sorted(set(only) - set(chosen))):
        raise ModelzooError(f"release {released}: no model of Autoware package(s) {', '.join(unknown)}", exit_code=2)
    with tempfile.TemporaryDirectory(prefix="modelzoo-hf-") as tmp:
        # Every repository is checked (tag conflicts refused) before any is written.
        plans = [_plan(manifest, p, hub_url, token, Path(tmp), tag) for p in chosen]
        for plan in plans:
            started = time.monotonic()
            if plan.state == "committed":
                repo = _commit(plan, store, manifest, manifest_bytes, lfs_threshold)
                plan.git.run("tag", tag, plan.commit)
                plan.git.run("push", "-q", plan.url, f"HEAD:refs/heads/{BRANCH}", f"refs/tags/{tag}")
            else:
                repo = RepoResult(plan.package, plan.repository, "", plan.state, plan.commit, len(plan.files))
                if plan.state == "tagged":
                    plan.git.run("tag", tag, plan.commit)
                    plan.git.run("push", "-q", "--no-verify", plan.url, f"refs/tags/{tag}")
            repo.tag, repo.seconds = tag, round(time.monotonic() - started, 2)
            log.info("%s %s: %s at %s", plan.repository, tag, repo.state, repo.commit[:12])
            result.repos.append(repo)
    return result
