"""Where the built-in agent's model runs: the Anthropic API, Amazon Bedrock or Google Vertex AI.

The anthropic SDK has a client for each (`agent.make_client` builds it) and each client finds its region
and credentials the way its cloud's own tools do. This module answers, before a run starts and for
`mdspec doctor`, whether that will work here: the provider's optional libraries are installed, and a
region and credentials can be found. It imports neither anthropic nor (at module level) the cloud
libraries, and it only says *where* credentials came from: no secret value is ever returned.

No network: credentials are located, never refreshed or tried (a wrong key shows on the first request).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mdspec.exec.procs import KEY_VARS

NAMES = {"anthropic": "the Anthropic API", "bedrock": "Amazon Bedrock", "vertex": "Google Vertex AI"}
# The modules each provider's SDK client imports (and their packages), which the extra of its name installs.
MODULES = {
    "bedrock": (("boto3", "boto3"), ("botocore", "botocore")),
    "vertex": (("google.auth", "google-auth"), ("google.auth.transport.requests", "requests")),
}
# Credentials besides the Anthropic keys that may sit in the worker's environment: redacted like them.
SECRET_VARS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK")
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
NO_KEY = 'ANTHROPIC_API_KEY is not set: export it, or set [agent] preset = "claude-code" in .mdspec.toml'


@dataclass(frozen=True)
class Readiness:
    ok: bool
    line: str  # what was found (never a secret's value), or else what to do


def missing_extra(provider: str) -> str | None:
    """The one-line instruction when the provider's optional libraries are not importable, else None."""
    for module, package in MODULES.get(provider, ()):
        try:
            importlib.import_module(module)
        except ImportError:
            return (
                f'agent.provider = "{provider}" needs {package}, which is not installed: '
                f"pip install 'mdspec[{provider}]'"
            )
    return None


def readiness(provider: str, env: Mapping[str, str]) -> Readiness:
    """Whether runs on `provider` can start; `env` is the worker's environment (the SDK reads it)."""
    if provider == "anthropic":
        found = [k for k in KEY_VARS if env.get(k)]
        return Readiness(True, f"API key set ({found[0]})") if found else Readiness(False, NO_KEY)
    problem = missing_extra(provider)
    if problem:
        return Readiness(False, problem)
    return _bedrock(env) if provider == "bedrock" else _vertex(env)


def _bedrock(env: Mapping[str, str]) -> Readiness:
    boto3: Any = importlib.import_module("boto3")
    exceptions: Any = importlib.import_module("botocore.exceptions")
    try:
        session = boto3.Session()  # as the SDK makes it: AWS_PROFILE, the config files, the environment
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or session.region_name
        if env.get("AWS_BEARER_TOKEN_BEDROCK"):
            cred = "Bedrock API key (AWS_BEARER_TOKEN_BEDROCK)"
        else:
            creds = session.get_credentials()
            cred = f"AWS credentials ({creds.method})" if creds is not None else ""
    except exceptions.BotoCoreError as exc:  # e.g. AWS_PROFILE names no profile
        return Readiness(False, f"Amazon Bedrock: {exc}")
    if not region:
        return Readiness(
            False,
            'agent.provider = "bedrock" needs an AWS region: export AWS_REGION=us-east-1 '
            "(or set region in your AWS profile)",
        )
    if not cred:
        return Readiness(
            False,
            'agent.provider = "bedrock" found no AWS credentials: export AWS_PROFILE, or '
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_BEARER_TOKEN_BEDROCK",
        )
    return Readiness(True, f"region {region}, {cred}")


def _vertex(env: Mapping[str, str]) -> Readiness:
    region = env.get("CLOUD_ML_REGION")
    if not region:
        return Readiness(False, 'agent.provider = "vertex" needs a region: export CLOUD_ML_REGION=us-east5 (or global)')
    auth: Any = importlib.import_module("google.auth")
    exceptions: Any = importlib.import_module("google.auth.exceptions")
    try:
        creds, project = auth.default(scopes=[CLOUD_PLATFORM])
    except exceptions.GoogleAuthError as exc:
        detail = " ".join(str(exc).split())[:160]
        return Readiness(
            False,
            'agent.provider = "vertex" found no Google credentials: run `gcloud auth '
            "application-default login` or export GOOGLE_APPLICATION_CREDENTIALS=key.json "
            f"({detail})",
        )
    project = env.get("ANTHROPIC_VERTEX_PROJECT_ID") or project
    if not project:
        return Readiness(
            False, 'agent.provider = "vertex" needs a project: export ANTHROPIC_VERTEX_PROJECT_ID=my-project'
        )
    return Readiness(True, f"region {region}, project {project}, {_google_kind(creds)}")


def _google_kind(creds: Any) -> str:
    """Which kind of Google credentials were found, in words (a service account's email is no secret)."""
    module = type(creds).__module__
    if module.endswith("service_account"):
        return f"service account {getattr(creds, 'service_account_email', '?')}"
    if module == "google.oauth2.credentials":
        return "user credentials (gcloud auth application-default login)"
    if module.startswith("google.auth.compute_engine"):
        return "the metadata server's service account"
    if module.endswith(("external_account", "identity_pool", "aws", "pluggable")):
        return "workload identity federation"
    if module.endswith("impersonated_credentials"):
        return "an impersonated service account"
    return f"Google credentials ({type(creds).__name__})"
