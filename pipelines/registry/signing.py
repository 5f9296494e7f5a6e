"""Signed release manifests: OpenSSF model signing, an elliptic-curve key, the signature beside the manifest.

Why `model-signing` (OpenSSF) and not `sigstore` alone: sigstore-python signs keyless only (a Fulcio
certificate for an OIDC identity, logged in Rekor), which needs the network to sign and a trust
root to verify; model-signing signs offline with a maintainer's EC key, verifies offline with the
public key alone, and writes the same Sigstore bundle (v0.3, a DSSE in-toto statement of the file's
sha256) that its keyless mode writes. So a registry can move to keyless (GitHub OIDC) signing by
changing the signer, not the format. No cryptography here is hand-written.

    releases/{version}/manifest.json       what a release serves (sha256 of every file)
    releases/{version}/manifest.json.sig   Sigstore bundle over the manifest's exact bytes

A consumer verifies the signature over the bytes it downloaded before it reads any sha256 from them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import ModelzooError, UsageError
from pipelines.registry.manifest import manifest_path
from pipelines.registry.stores import Store

# A PEM private key file, or the PEM text itself (a CI secret), of the key releases are signed with.
SIGNING_KEY_ENV = "MODELZOO_SIGNING_KEY"
SIGNATURE_SUFFIX = ".sig"
MAX_SIGNATURE = 1 << 20
PEM_BEGIN = "-----BEGIN"


class SignatureError(ModelzooError):
    exit_code = 6  # integrity, as a sha256 mismatch


def signature_path(version: str) -> str:
    return manifest_path(version) + SIGNATURE_SUFFIX


@contextmanager
def _scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="modelzoo-sig-") as tmp:
        os.chmod(tmp, 0o700)
        yield Path(tmp)


def _pem_text(value: str, base: Path | None, what: str) -> tuple[bytes, str]:
    """(PEM bytes, how to name it in messages) from inline PEM or a path (relative: to `base`)."""
    if value.lstrip().startswith(PEM_BEGIN):
        return value.strip().encode() + b"\n", f"{what} (inline PEM)"
    path = Path(value) if base is None or Path(value).is_absolute() else base / value
    try:
        return path.read_bytes(), str(value)
    except OSError as err:
        raise UsageError(f"{what} {value}: cannot read: {err.strerror}") from None


@dataclass(frozen=True)
class Signer:
    """An EC private key (PEM, unencrypted) that signs manifests."""

    pem: bytes
    source: str

    def sign(self, data: bytes) -> bytes:
        from model_signing import signing

        with _scratch() as tmp:
            key, manifest, sig = tmp / "key.pem", tmp / "manifest.json", tmp / "manifest.json.sig"
            key.touch(0o600)
            key.write_bytes(self.pem)
            manifest.write_bytes(data)
            try:
                signing.Config().use_elliptic_key_signer(private_key=key).sign(manifest, sig)
            except Exception as err:  # the library raises several types; one line names the key
                raise UsageError(f"{self.source}: cannot sign with it: {_first_line(err)}") from None
            return sig.read_bytes()


def load_signer(value: str, base: Path | None = None, what: str = SIGNING_KEY_ENV) -> Signer:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem, source = _pem_text(value, base, what)
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as err:
        raise UsageError(f"{source}: not an unencrypted PEM private key ({_first_line(err)})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise UsageError(f"{source}: not an elliptic-curve key (model signing signs with EC keys)")
    return Signer(pem, source)


def signer_from_env(given: str | None = None) -> Signer | None:
    """The signer of `--signing-key` or $MODELZOO_SIGNING_KEY (a path or the PEM); None when neither is set."""
    value = given or os.environ.get(SIGNING_KEY_ENV)
    if not value:
        return None
    return load_signer(value, what="--signing-key" if given else SIGNING_KEY_ENV)


@dataclass(frozen=True)
class Verifier:
    """The public key a consumer pinned: only manifests signed by its private key are trusted."""

    pem: bytes
    source: str

    def verify(self, data: bytes, signature: bytes | None, where: str) -> None:
        """Raise SignatureError (one line) unless `signature` is this key's signature over `data`."""
        from model_signing import verifying

        sig_where = where + SIGNATURE_SUFFIX
        if signature is None:
            raise SignatureError(f"{sig_where}: not found: the release is unsigned, and {self.source} is pinned")
        with _scratch() as tmp:
            pub, manifest, sig = tmp / "key.pub", tmp / "manifest.json", tmp / "manifest.json.sig"
            pub.write_bytes(self.pem)
            manifest.write_bytes(data)
            sig.write_bytes(signature)
            try:
                verifying.Config().use_elliptic_key_verifier(public_key=pub).verify(manifest, sig)
            except Exception as err:  # ValueError, JSON, protobuf, cryptography errors: all a bad signature
                text = _first_line(err)
                if text.startswith("Key mismatch"):
                    why = f"signed by another key than {self.source}"
                elif text.startswith("Signature mismatch"):
                    why = "does not match the manifest: the manifest was changed after it was signed"
                else:
                    why = f"invalid signature ({text[:120]})"
                raise SignatureError(f"{sig_where}: {why}: refusing release") from None


def load_verifier(value: str, base: Path | None = None, what: str = "public_key") -> Verifier:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem, source = _pem_text(value, base, what)
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as err:
        raise UsageError(f"{what} {source}: not a PEM public key ({_first_line(err)})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise UsageError(f"{what} {source}: not an elliptic-curve public key")
    return Verifier(pem, f"public key {source}")


def read_signature(store: Store, version: str) -> bytes | None:
    """The signature beside a release's manifest (one GET), or None when there is none."""
    from pipelines.registry.stores import RegistryError

    key = signature_path(version)
    try:
        with store.open_read(key) as f:
            data = f.read(MAX_SIGNATURE + 1)
    except RegistryError as err:
        if ": not found" in str(err):
            return None
        raise
    if len(data) > MAX_SIGNATURE:
        raise SignatureError(f"{store.url}/{key}: larger than 1 MiB, not a signature")
    return data


def verify_manifest(store: Store, version: str, data: bytes, verifier: Verifier) -> None:
    """The check fetch and `release verify` make on a manifest's bytes before trusting them."""
    verifier.verify(data, read_signature(store, version), f"{store.url}/{manifest_path(version)}")


def put_signature(store: Store, version: str, data: bytes, signer: Signer) -> None:
    """Sign a manifest's exact bytes and write the signature beside it (overwriting: it is only valid
    for those bytes, so a stale one is worthless)."""
    store.put_bytes(signature_path(version), signer.sign(data))


def generate_keypair(private: Path, public: Path) -> None:
    """A new P-256 key: the private key (mode 0600) for the publisher, the public one for consumers' pins."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from pipelines.fileio import write_text

    for path in (private, public):
        if path.exists():
            raise UsageError(f"{path}: already exists: not overwriting a key")
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    private.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(pem)
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    write_text(public, pub.decode())


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]
