"""Generated, rebased and revert commits are signed exactly as the user's commits are, by git's signing
programs; a failed signature holds the result with the signer's message and never lands it unsigned.

Real keys: ssh keys from ssh-keygen, an openpgp key from gpg and a self-signed x509 certificate from
gpgsm, each in a throwaway GNUPGHOME.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FOREGROUND, Repo
from runhelpers import QUIET, last_run, spec_commit

from mdspec.errors import SigningError
from mdspec.fast import trailers
from mdspec.git import Identity
from mdspec.git import Repo as GitRepo

ADA = Identity("Ada Lovelace", "ada@example.com")


def ssh_signing(repo: Repo, tmp_path: Path, name: str = "key") -> Path:
    """A fresh ed25519 key, set as the repository's signing key, with an allowed-signers file to verify."""
    key = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ada", "-f", str(key)], check=True)
    allowed = tmp_path / f"{name}.allowed"
    allowed.write_text(f"ada@example.com {(tmp_path / (name + '.pub')).read_text().strip()}\n")
    repo.git("config", "gpg.format", "ssh")
    repo.git("config", "user.signingkey", str(key))
    repo.git("config", "gpg.ssh.allowedSignersFile", str(allowed))
    repo.git("config", "commit.gpgsign", "true")
    return key


def failing_signer(repo: Repo, tmp_path: Path) -> None:
    """An openpgp signing program that refuses, as a locked smartcard or a missing key does."""
    prog = tmp_path / "broken-gpg"
    prog.write_text("#!/bin/sh\necho 'gpg: signing failed: Card removed (token 7)' >&2\nexit 1\n")
    prog.chmod(0o755)
    repo.git("config", "gpg.format", "openpgp")
    repo.git("config", "gpg.program", str(prog))
    repo.git("config", "commit.gpgsign", "true")


# The user's own commit, made with `--no-gpg-sign` in effect (their signer is broken too); mdspec's hook
# clears GIT_* variables, so the repository's commit.gpgsign = true is what mdspec's commits follow.
UNSIGNED_FOREGROUND = {
    **FOREGROUND,
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "commit.gpgsign",
    "GIT_CONFIG_VALUE_0": "false",
}


def verified(repo: Repo, rev: str) -> bool:
    return subprocess.run(["git", "verify-commit", rev], cwd=repo.top, capture_output=True).returncode == 0


def has_signature(repo: Repo, rev: str) -> bool:
    return "\ngpgsig " in repo.git("cat-file", "commit", rev)


# --- ssh --------------------------------------------------------------------------------------------


def test_generated_commit_is_signed_with_the_ssh_key(mdrepo: Repo, tmp_path: Path) -> None:
    ssh_signing(mdrepo, tmp_path)
    spec = spec_commit(mdrepo, env=FOREGROUND)
    assert mdrepo.head() != spec, mdrepo.last_output
    assert trailers.values(mdrepo.message(), trailers.IMPLEMENTS) == [spec]
    assert verified(mdrepo, "HEAD")
    shown = mdrepo.git("log", "-1", "--show-signature", "--format=%G?")
    assert 'Good "git" signature for ada@example.com' in shown
    # The control: the same key check fails for a commit nobody signed.
    mdrepo.git("config", "commit.gpgsign", "false")
    mdrepo.commit("unsigned", {"x.txt": "x\n"}, env=QUIET)
    assert not verified(mdrepo, "HEAD")


def test_unsigned_when_the_user_does_not_sign(mdrepo: Repo, tmp_path: Path) -> None:
    ssh_signing(mdrepo, tmp_path)
    mdrepo.git("config", "commit.gpgsign", "false")
    spec_commit(mdrepo, env=FOREGROUND)
    assert last_run(mdrepo)["status"] == "landed"
    assert not has_signature(mdrepo, "HEAD")


def test_rebased_result_is_signed_and_keeps_its_author(repo: Repo, tmp_path: Path) -> None:
    ssh_signing(repo, tmp_path)
    base = repo.head()
    repo.write("a.txt", "a\n")
    repo.git("add", "a.txt")
    tree = repo.git("write-tree").strip()
    g = GitRepo(repo.top)
    result = g.create_commit(tree, base, "mdspec: add a\n", Identity("Ada Lovelace (mdspec)", ADA.email), ADA)
    repo.git("reset", "-q", "--hard", base)
    tip = repo.commit("meanwhile", {"b.txt": "b\n"})
    rebased = g.rebase_commit(result, tip, ADA)
    assert rebased is not None
    assert rebased != result
    assert verified(repo, rebased)
    assert repo.git("log", "-1", "--format=%P", rebased).strip() == tip
    fmt = "%an|%ae|%ad|%B"
    assert repo.git("log", "-1", f"--format={fmt}", rebased) == repo.git("log", "-1", f"--format={fmt}", result)


def test_revert_commit_is_signed(mdrepo: Repo, tmp_path: Path) -> None:
    ssh_signing(mdrepo, tmp_path)
    spec_commit(mdrepo, env=FOREGROUND)
    generated = mdrepo.head()
    mdrepo.mdspec("revert")
    assert trailers.values(mdrepo.message(), trailers.REVERTS) == [generated]
    assert verified(mdrepo, "HEAD")


# --- openpgp ----------------------------------------------------------------------------------------


@pytest.fixture
def gnupghome(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A throwaway keyring with one passphrase-less key for ada@example.com.

    A short path of its own: gpg-agent's socket lives there and socket paths are limited to 108 bytes.
    """
    if shutil.which("gpg") is None:
        pytest.skip("gpg is not installed")
    home = Path(tempfile.mkdtemp(prefix="mdg"))
    home.chmod(0o700)
    monkeypatch.setenv("GNUPGHOME", str(home))
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            "Ada Lovelace <ada@example.com>",
            "ed25519",
            "sign",
            "never",
        ],
        check=True,
        capture_output=True,
    )
    yield home
    subprocess.run(["gpgconf", "--kill", "all"], capture_output=True)
    shutil.rmtree(home, ignore_errors=True)


def test_generated_commit_is_signed_with_the_openpgp_key(mdrepo: Repo, gnupghome: Path) -> None:
    mdrepo.git("config", "gpg.format", "openpgp")
    mdrepo.git("config", "user.signingkey", "ada@example.com")
    mdrepo.git("config", "commit.gpgsign", "true")
    spec_commit(mdrepo, env=FOREGROUND)
    assert last_run(mdrepo)["status"] == "landed"
    assert mdrepo.git("log", "-1", "--format=%G?").strip() == "G"
    assert verified(mdrepo, "HEAD")
    assert 'Good signature from "Ada Lovelace <ada@example.com>"' in mdrepo.git("verify-commit", "HEAD")


@pytest.fixture
def x509home(gnupghome: Path) -> str:
    """A self-signed x509 certificate for ada@example.com in gpgsm (its key made by gpg, so it has no
    passphrase); trusted as a root, no CRL checks (offline). Returns the certificate's fingerprint."""
    if shutil.which("gpgsm") is None:
        pytest.skip("gpgsm is not installed")
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            "Ada X509 <ada@example.com>",
            "rsa2048",
            "sign",
            "never",
        ],
        check=True,
        capture_output=True,
    )
    keys = subprocess.run(
        ["gpg", "--with-keygrip", "--with-colons", "-K", "Ada X509"], check=True, capture_output=True, text=True
    ).stdout
    grip = next(ln.split(":")[9] for ln in keys.splitlines() if ln.startswith("grp:"))
    params = gnupghome / "params"
    params.write_text(
        f"Key-Type: RSA\nKey-Grip: {grip}\nKey-Usage: sign, cert\nSerial: random\n"
        "Name-DN: CN=Ada Lovelace,O=Test\nName-Email: ada@example.com\n"
    )
    cert = subprocess.run(
        ["gpgsm", "--batch", "--armor", "--gen-key", str(params)], check=True, capture_output=True
    ).stdout
    subprocess.run(["gpgsm", "--batch", "--import"], input=cert, check=True, capture_output=True)
    listing = subprocess.run(
        ["gpgsm", "--list-keys", "--with-colons"], check=True, capture_output=True, text=True
    ).stdout
    fpr = next(ln.split(":")[9] for ln in listing.splitlines() if ln.startswith("fpr:"))
    (gnupghome / "trustlist.txt").write_text(f"{fpr} S relax\n")
    (gnupghome / "gpgsm.conf").write_text("disable-crl-checks\n")
    return fpr


def test_generated_commit_is_signed_with_the_x509_certificate(mdrepo: Repo, x509home: str) -> None:
    mdrepo.git("config", "gpg.format", "x509")
    mdrepo.git("config", "user.signingkey", x509home)
    mdrepo.git("config", "commit.gpgsign", "true")
    spec_commit(mdrepo, env=FOREGROUND)
    assert last_run(mdrepo)["status"] == "landed"
    assert "-----BEGIN SIGNED MESSAGE-----" in mdrepo.git("cat-file", "commit", "HEAD")
    assert verified(mdrepo, "HEAD")
    assert 'Good signature from "/CN=Ada Lovelace/O=Test"' in mdrepo.git("verify-commit", "HEAD")


# --- a signer that fails --------------------------------------------------------------------------


def test_failed_signature_raises_with_the_signers_message(repo: Repo, tmp_path: Path) -> None:
    failing_signer(repo, tmp_path)
    g = GitRepo(repo.top)
    before = repo.git("count-objects", "-v")
    with pytest.raises(SigningError) as info:
        g.create_commit(g.tree_of(repo.head()), repo.head(), "x\n", ADA, ADA)
    msg = str(info.value)
    assert "gpg: signing failed: Card removed (token 7)" in msg
    assert "\n" not in msg
    assert repo.git("count-objects", "-v") == before  # nothing written


def test_failed_signature_holds_the_result_with_the_message(mdrepo: Repo, tmp_path: Path) -> None:
    failing_signer(mdrepo, tmp_path)
    spec = spec_commit(mdrepo, env=UNSIGNED_FOREGROUND)
    assert mdrepo.head() == spec  # nothing landed
    rec = last_run(mdrepo)
    assert rec["status"] == "held"
    assert "gpg: signing failed: Card removed (token 7)" in rec["reason"]
    held = mdrepo.head(f"refs/mdspec/results/{rec['id']}")
    assert held == rec["result"]
    assert not has_signature(mdrepo, held)
    status = mdrepo.mdspec("status").stdout
    assert "Card removed" in status
    # apply refuses while signing still fails: one line, the signer's words, nothing landed.
    proc = mdrepo.mdspec("apply", check=False)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "Card removed (token 7)" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert mdrepo.head() == spec
    # Signing fixed: apply lands the result, signed.
    ssh_signing(mdrepo, tmp_path)
    mdrepo.mdspec("apply")
    assert mdrepo.head() != spec
    assert trailers.values(mdrepo.message(), trailers.IMPLEMENTS) == [spec]
    assert verified(mdrepo, "HEAD")
    assert (mdrepo.top / "out.txt").is_file()


def test_failed_signature_refuses_the_revert(mdrepo: Repo, tmp_path: Path) -> None:
    spec_commit(mdrepo, env=FOREGROUND)
    generated = mdrepo.head()
    failing_signer(mdrepo, tmp_path)
    proc = mdrepo.mdspec("revert", check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mdspec: error: revert not made"), proc.stderr
    assert "Card removed (token 7)" in lines[0]
    assert mdrepo.head() == generated
    assert mdrepo.status() == ""
    assert (mdrepo.top / "out.txt").is_file()


def test_failing_ssh_signer_message(repo: Repo, tmp_path: Path) -> None:
    ssh_signing(repo, tmp_path)
    os.unlink(tmp_path / "key")
    os.unlink(tmp_path / "key.pub")
    g = GitRepo(repo.top)
    with pytest.raises(SigningError) as info:
        g.create_commit(g.tree_of(repo.head()), repo.head(), "x\n", ADA, ADA)
    assert "(ssh)" in str(info.value)
    assert str(tmp_path / "key") in str(info.value)
