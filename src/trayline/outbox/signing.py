"""Site keys: an Ed25519 key pair per site, the private half in a 0600 file.

The CM signs each shipment manifest with its private key; the customer keeps
the CM's public key in its store (``trayline keys trust``) and accepts only
manifests that verify against a trusted key. A key's *id* is the first 16 hex
digits of the SHA-256 of the raw 32-byte public key: short enough to read over
the phone when the customer checks a key file it was sent.

The private key file must be readable by its owner only. A key anyone else on
the machine can read might have been copied, and a manifest signed with it
proves nothing: :func:`load_private_key` refuses it, naming the file and mode.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "KeyFileError",
    "SiteKey",
    "create_key_pair",
    "key_id",
    "load_private_key",
    "load_public_key",
    "public_hex",
    "verify",
]

PUBLIC_SUFFIX = ".pub"
PRIVATE_SUFFIX = ".key"


class KeyFileError(Exception):
    """A key file is missing, unreadable, not a key, or readable by others."""


@dataclass(frozen=True, slots=True)
class SiteKey:
    """A loaded private key with its id (never printed, never stored)."""

    private: Ed25519PrivateKey
    key_id: str
    path: Path

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


def raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_hex(public: Ed25519PublicKey) -> str:
    return raw_public(public).hex()


def key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public(public)).hexdigest()[:16]


def create_key_pair(name: str, folder: Path) -> tuple[Path, Path, str]:
    """Write ``NAME.key`` (0600, PEM PKCS#8) and ``NAME.pub`` (PEM); refuses to overwrite."""
    folder.mkdir(parents=True, exist_ok=True)
    private_path = folder / f"{name}{PRIVATE_SUFFIX}"
    public_path = folder / f"{name}{PUBLIC_SUFFIX}"
    for path in (private_path, public_path):
        if path.exists():
            raise KeyFileError(f"{path} exists already: choose another --name or --dir")
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # O_EXCL + mode 0600 at creation: the key is never readable by others, not even briefly.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    public_path.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_path, public_path, key_id(private.public_key())


def load_private_key(path: Path) -> SiteKey:
    """The private key at ``path``; refused when group or others may read or write it."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the private key ({exc.strerror})") from None
    if mode & 0o077:
        raise KeyFileError(
            f"{path}: private key has mode {mode:04o}, readable by others; "
            f"run chmod 600 {path} (and consider the key exposed)"
        )
    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, OSError):
        raise KeyFileError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 key (trayline keys create makes one)")
    return SiteKey(private, key_id(private.public_key()), path)


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the public key ({exc.strerror})") from None
    try:
        public = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise KeyFileError(f"{path}: not a PEM public key (the .pub file of keys create)") from None
    if not isinstance(public, Ed25519PublicKey):
        raise KeyFileError(f"{path}: not an Ed25519 public key")
    return public


def verify(public_key_hex: str, signature: bytes, data: bytes) -> bool:
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
    try:
        public.verify(signature, data)
    except InvalidSignature:
        return False
    return True
