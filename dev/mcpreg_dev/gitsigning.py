"""Signed commits and tags in the test repositories, made by the real tools: `ssh-keygen` keys and
`gpg` keys, used by git's own `commit-tree -S` and `tag -s`.

A signer re-signs a branch's tip (`sign_tip`): the commit `BareRepo.commit` wrote is replaced by one
with the same tree, parent and message, carrying a signature, so tests build their content as usual
and then decide who signs it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol, Self

from mcpreg_dev.gitserver import BareRepo, isolated_git_env, run_git


class Signer(Protocol):
    def git_config(self) -> dict[str, str]: ...
    def env(self) -> dict[str, str]: ...
    def trusted_keys(self) -> dict[str, bytes]: ...

    @property
    def fingerprint(self) -> str: ...


def _run(args: list[str], env: Mapping[str, str] | None = None) -> str:
    done = subprocess.run(args, env=dict(env) if env else None, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True)
class _KeySigner:
    """A signer whose key, for `identity`, lives in `directory`, a directory of its own: `create` makes
    both with the real tool."""

    DEFAULT_IDENTITY: ClassVar[str]
    directory: Path
    identity: str

    @classmethod
    def create(cls, directory: Path, identity: str | None = None) -> Self:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        signer = cls(directory, identity or cls.DEFAULT_IDENTITY)
        signer._make_key()
        return signer

    def _make_key(self) -> None:
        raise NotImplementedError


class SshSigner(_KeySigner):
    """An Ed25519 SSH key made by ssh-keygen; trusted through an allowed-signers line."""

    DEFAULT_IDENTITY = "catalogue-maintainer@example.com"

    @property
    def key(self) -> Path:
        return self.directory / "id_ed25519"

    def _make_key(self) -> None:
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.identity, "-f", str(self.key)])

    @property
    def public_key(self) -> str:
        return " ".join(self.key.with_suffix(".pub").read_text().split()[:2])

    @property
    def fingerprint(self) -> str:
        # "256 SHA256:… comment (ED25519)"
        return _run(["ssh-keygen", "-l", "-f", str(self.key.with_suffix(".pub"))]).split()[1]

    def git_config(self) -> dict[str, str]:
        return {"gpg.format": "ssh", "user.signingkey": str(self.key)}

    def env(self) -> dict[str, str]:
        return {}

    def trusted_keys(self) -> dict[str, bytes]:
        return {"allowed_signers": f"{self.identity} {self.public_key}\n".encode()}


class GpgSigner(_KeySigner):
    """An Ed25519 OpenPGP key made by gpg in a home of its own (`directory`); trusted through its
    armored export."""

    DEFAULT_IDENTITY = "release-signer@example.com"

    def _make_key(self) -> None:
        _run(
            [
                "gpg",
                "--batch",
                "--passphrase",
                "",
                "--quick-gen-key",
                f"Signer <{self.identity}>",
                "ed25519",
                "sign",
                "never",
            ],
            self.env(),
        )

    @property
    def fingerprint(self) -> str:
        out = _run(["gpg", "--batch", "--with-colons", "--fingerprint", self.identity], self.env())
        return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))

    def git_config(self) -> dict[str, str]:
        return {"gpg.format": "openpgp", "user.signingkey": self.identity}

    def env(self) -> dict[str, str]:
        return {"GNUPGHOME": str(self.directory), "PATH": "/usr/bin:/bin"}

    def trusted_keys(self) -> dict[str, bytes]:
        armored = _run(["gpg", "--batch", "--armor", "--export", self.identity], self.env())
        return {"signer.asc": armored.encode()}


def _git(repo: BareRepo, signer: Signer, *args: str) -> str:
    env = {**isolated_git_env(signer.git_config()), **signer.env()}
    return run_git(["--git-dir", str(repo.path), *args], env=env).strip()


def sign_tip(repo: BareRepo, signer: Signer, branch: str = "main") -> str:
    """Replace the tip of `branch` by the same commit, signed by `signer`; the new commit's sha."""
    tip = f"refs/heads/{branch}"
    message = _git(repo, signer, "log", "-1", "--format=%B", tip)
    parents = _git(repo, signer, "log", "-1", "--format=%P", tip).split()
    parent_args = [arg for parent in parents for arg in ("-p", parent)]
    signed = _git(repo, signer, "commit-tree", "-S", *parent_args, "-m", message, f"{tip}^{{tree}}")
    _git(repo, signer, "update-ref", tip, signed)
    return signed


def signed_tag(repo: BareRepo, signer: Signer, name: str, rev: str = "HEAD") -> str:
    """An annotated tag `name` at `rev` signed by `signer` (moved if it exists); the tagged commit."""
    _git(repo, signer, "tag", "--force", "-s", "-m", f"release {name}", name, rev)
    return _git(repo, signer, "rev-parse", f"{name}^{{commit}}")
