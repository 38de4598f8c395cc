"""The built-in agent on Amazon Bedrock and Google Vertex AI (`[agent] provider`): config, the checks
before a run, `mdspec doctor`, and whole runs through the SDK's own Bedrock and Vertex clients against
the fake API in their wire formats (SigV4-signed requests and AWS event streams; OAuth service-account
tokens and rawPredict paths)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Repo
from fakeapi import AWS_KEY_ID, AWS_SECRET, FAKE_KEY, VERTEX_TOKEN, FakeAPI
from runhelpers import QUIET, last_run, spec_commit

from mdspec import config
from mdspec.agents import providers
from mdspec.agents.session import RunContext
from mdspec.config import AgentConfig
from mdspec.errors import BackendError, ConfigError
from mdspec.fast import trailers

BEDROCK_MODEL = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
VERTEX_MODEL = "claude-sonnet-4-5@20250929"


@pytest.fixture
def cloud_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No cloud credentials or settings from this machine, and no slow probing of metadata servers."""
    for k in list(os.environ):
        if k.startswith(("AWS_", "GOOGLE_", "CLOUD_ML_", "ANTHROPIC_", "CLOUDSDK_", "GCE_")):
            monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return tmp_path


@pytest.fixture
def cloud_api(cloud_env: Path) -> Iterator[FakeAPI]:
    api = FakeAPI().start()
    try:
        yield api
    finally:
        api.close()


def bedrock_env(api: FakeAPI, region: str = "eu-west-1") -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "AWS_REGION": region,
        "ANTHROPIC_BEDROCK_BASE_URL": api.base_url,
    }


def vertex_env(api: FakeAPI, tmp_path: Path, project: str = "proj-42") -> dict[str, str]:
    key = tmp_path / "service-account.json"
    key.write_text(json.dumps(api.service_account_info(project)))
    return {
        "GOOGLE_APPLICATION_CREDENTIALS": str(key),
        "CLOUD_ML_REGION": "us-east5",
        "ANTHROPIC_VERTEX_PROJECT_ID": project,
        "ANTHROPIC_VERTEX_BASE_URL": api.base_url + "/v1",
    }


def use_provider(repo: Repo, provider: str, model: str | None = None) -> None:
    model_line = f'model = "{model}"\n' if model else ""
    repo.configure(f'[agent]\nbackend = "anthropic"\nprovider = "{provider}"\n{model_line}')
    repo.commit(f"run the agent on {provider}", env=QUIET)


def script_run(api: FakeAPI) -> None:
    """One run: create a file, look at what the agent's shell sees of the credentials, finish."""
    api.edit("create", "app.py", file_text="print('hello')\n")
    api.bash("echo aws=${AWS_SECRET_ACCESS_KEY:-none} google=${GOOGLE_APPLICATION_CREDENTIALS:-none}; cat app.py")
    api.text("Add app.py\n\nPrints hello.")


def files_under(path: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in path.rglob("*") if p.is_file())


# --- config ---------------------------------------------------------------------------------------------


def test_provider_is_checked_in_one_line_naming_the_key_and_the_allowed_values(repo: Repo) -> None:
    with pytest.raises(ConfigError) as info:
        config.from_mapping({"agent": {"provider": "azure"}}, None, ".mdspec.toml")
    assert str(info.value) == (
        ".mdspec.toml: agent.provider: expected one of 'anthropic', 'bedrock', 'vertex'; got 'azure'"
    )
    repo.write(".mdspec.toml", '[agent]\nprovider = "Bedrock"\n')
    proc = repo.mdspec("run", "--foreground", check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        "mdspec: error: .mdspec.toml: agent.provider: expected one of 'anthropic', 'bedrock', 'vertex'; got 'Bedrock'"
    )


def test_each_provider_names_the_model_its_own_way_and_keeps_its_price() -> None:
    sonnet = config.DEFAULT_PRICES["claude-sonnet-4-5"]
    # Bedrock and Vertex default to the ids they are known to serve, a model before the API's default.
    expected = {"anthropic": config.DEFAULT_PRICES[config.DEFAULT_MODEL], "bedrock": sonnet, "vertex": sonnet}
    for provider in config.PROVIDERS:
        agent = config.from_mapping({"agent": {"provider": provider}}, None, "x").agent
        assert agent.provider == provider
        assert agent.model == config.PROVIDER_MODELS[provider]
        assert agent.price() == expected[provider]  # the limit in dollars holds on every provider
    chosen = config.from_mapping({"agent": {"provider": "bedrock", "model": BEDROCK_MODEL}}, None, "x").agent
    assert chosen.model == BEDROCK_MODEL
    assert chosen.price() == sonnet
    assert chosen.price("anthropic.claude-haiku-4-5-20251001-v1:0") == config.DEFAULT_PRICES["claude-haiku-4-5"]
    assert chosen.price("anthropic.claude-unknown-9") is None
    assert config.from_mapping({}, None, "x").agent.provider == "anthropic"


def test_a_provider_for_an_agent_cli_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        config.from_mapping({"agent": {"preset": "claude-code", "provider": "vertex"}}, None, ".mdspec.toml")
    assert str(info.value).startswith(".mdspec.toml: agent.provider: only the built-in agent")


# --- before a run ---------------------------------------------------------------------------------------


def test_bedrock_and_vertex_need_no_anthropic_key_but_their_own_settings(
    cloud_api: FakeAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mdspec.agents.agent import check_ready

    with pytest.raises(BackendError, match="ANTHROPIC_API_KEY is not set"):
        check_ready(os.environ, "anthropic")
    with pytest.raises(BackendError) as info:
        check_ready(os.environ, "bedrock")
    assert str(info.value) == (
        'agent.provider = "bedrock" needs an AWS region: export AWS_REGION=us-east-1 '
        "(or set region in your AWS profile)"
    )
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    with pytest.raises(BackendError, match='"bedrock" found no AWS credentials: export AWS_PROFILE'):
        check_ready(os.environ, "bedrock")
    for k, v in bedrock_env(cloud_api).items():
        monkeypatch.setenv(k, v)
    check_ready(os.environ, "bedrock")
    assert providers.readiness("bedrock", os.environ).line == "region eu-west-1, AWS credentials (env)"

    with pytest.raises(BackendError, match='"vertex" needs a region: export CLOUD_ML_REGION='):
        check_ready(os.environ, "vertex")
    env = vertex_env(cloud_api, tmp_path)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    check_ready(os.environ, "vertex")
    assert providers.readiness("vertex", os.environ).line == (
        "region us-east5, project proj-42, service account mdspec-test@fake-project.iam.gserviceaccount.com"
    )
    monkeypatch.delenv("ANTHROPIC_VERTEX_PROJECT_ID")  # the key file's project stands in
    assert "project proj-42," in providers.readiness("vertex", os.environ).line
    assert cloud_api.token_requests == 0  # credentials are located, never used, before a run


def test_a_missing_extra_is_one_line_naming_the_pip_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from mdspec.agents.agent import check_ready

    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 now raises ImportError
    monkeypatch.setitem(sys.modules, "google.auth", None)
    with pytest.raises(BackendError) as info:
        check_ready({"AWS_REGION": "eu-west-1"}, "bedrock")
    assert str(info.value) == (
        "agent.provider = \"bedrock\" needs boto3, which is not installed: pip install 'mdspec[bedrock]'"
    )
    with pytest.raises(BackendError) as info:
        check_ready({"CLOUD_ML_REGION": "us-east5"}, "vertex")
    assert str(info.value) == (
        "agent.provider = \"vertex\" needs google-auth, which is not installed: pip install 'mdspec[vertex]'"
    )


def test_a_run_without_the_extra_stops_before_it_starts(mdrepo: Repo, cloud_api: FakeAPI, tmp_path: Path) -> None:
    use_provider(mdrepo, "bedrock")
    spec = spec_commit(mdrepo)
    shadow = tmp_path / "no-boto3"  # as if `pip install mdspec` had been run without the extra
    shadow.mkdir()
    (shadow / "boto3.py").write_text("raise ImportError(\"No module named 'boto3'\")\n")
    env = {**bedrock_env(cloud_api), "PYTHONPATH": f"{shadow}{os.pathsep}{os.environ['PYTHONPATH']}"}
    proc = mdrepo.mdspec("run", "--foreground", check=False, env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = "agent.provider = \"bedrock\" needs boto3, which is not installed: pip install 'mdspec[bedrock]'"
    rec = last_run(mdrepo)
    assert proc.stdout.strip().splitlines()[-1] == f"mdspec: run {rec['id']} failed: {line}"
    assert "Traceback" not in proc.stdout + proc.stderr
    assert rec["status"] == "failed"
    assert rec["reason"] == line
    assert mdrepo.head() == spec
    assert not cloud_api.requests
    assert not (mdrepo.state / "worktree").exists()  # stopped before anything of the run was set up


# --- whole runs through the fake API --------------------------------------------------------------------


def test_a_spec_commit_lands_through_bedrock(mdrepo: Repo, cloud_api: FakeAPI) -> None:
    use_provider(mdrepo, "bedrock", BEDROCK_MODEL)
    spec = spec_commit(mdrepo)
    script_run(cloud_api)
    proc = mdrepo.mdspec("run", "--foreground", check=False, env=bedrock_env(cloud_api))
    assert proc.returncode == 0, proc.stdout + proc.stderr

    msg = mdrepo.message()
    assert msg.startswith("mdspec: Add app.py")
    assert trailers.values(msg, trailers.IMPLEMENTS) == [spec]
    assert (mdrepo.top / "app.py").read_text() == "print('hello')\n"
    reqs = cloud_api.requests
    assert len(reqs) == 3
    assert all(r.status == 200 and r.provider == "bedrock" for r in reqs)
    # Streamed, signed for the configured region, the model in the path and not in the body.
    assert {r.path for r in reqs} == {f"/model/{BEDROCK_MODEL}/invoke-with-response-stream"}
    assert all(
        f"Credential={AWS_KEY_ID}/" in r.headers["authorization"]
        and "/eu-west-1/bedrock/aws4_request" in r.headers["authorization"]
        for r in reqs
    )
    assert all("model" not in r.body and "stream" not in r.body and r.body["anthropic_version"] for r in reqs)
    shell = reqs[2].body["messages"][-1]["content"][0]["content"]
    assert shell.startswith("aws=none google=none")  # the agent's commands never see the credentials
    rec = last_run(mdrepo)
    assert rec["status"] == "landed"
    assert rec["turns"] == 3
    assert rec["cost_usd"] > 0  # priced as the model it is, so max_cost_usd holds on Bedrock too
    assert AWS_SECRET not in files_under(mdrepo.state)


def test_a_spec_commit_lands_through_vertex(mdrepo: Repo, cloud_api: FakeAPI, tmp_path: Path) -> None:
    use_provider(mdrepo, "vertex")
    spec = spec_commit(mdrepo)
    script_run(cloud_api)
    proc = mdrepo.mdspec("run", "--foreground", check=False, env=vertex_env(cloud_api, tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr

    msg = mdrepo.message()
    assert msg.startswith("mdspec: Add app.py")
    assert trailers.values(msg, trailers.IMPLEMENTS) == [spec]
    reqs = cloud_api.requests
    assert len(reqs) == 3
    assert all(r.status == 200 and r.provider == "vertex" for r in reqs)
    path = f"/v1/projects/proj-42/locations/us-east5/publishers/anthropic/models/{VERTEX_MODEL}:streamRawPredict"
    assert {r.path for r in reqs} == {path}
    assert all(r.headers["authorization"] == f"Bearer {VERTEX_TOKEN}" for r in reqs)
    assert all("model" not in r.body and r.body["stream"] is True and r.body["anthropic_version"] for r in reqs)
    assert cloud_api.token_requests == 1  # one service-account token, reused for every turn
    shell = reqs[2].body["messages"][-1]["content"][0]["content"]
    assert shell.startswith("aws=none google=none")
    rec = last_run(mdrepo)
    assert rec["status"] == "landed"
    assert rec["cost_usd"] > 0
    assert VERTEX_TOKEN not in files_under(mdrepo.state)


def test_refused_aws_credentials_end_the_run_with_the_reason(mdrepo: Repo, cloud_api: FakeAPI) -> None:
    use_provider(mdrepo, "bedrock")
    spec = spec_commit(mdrepo)
    env = {**bedrock_env(cloud_api), "AWS_SECRET_ACCESS_KEY": "wrong/secret-0123456789-also-secret"}
    proc = mdrepo.mdspec("run", "--foreground", check=False, env=env)
    assert mdrepo.head() == spec, proc.stdout + proc.stderr
    rec = last_run(mdrepo)
    assert rec["status"] != "landed"
    assert rec["reason"].startswith(
        "the credentials were refused (PermissionDeniedError, status 403, request id req_fake"
    )
    assert "check the AWS credentials" in rec["reason"]
    assert "signature we calculated does not match" in rec["reason"]
    assert "wrong/secret-0123456789-also-secret" not in files_under(mdrepo.state)
    assert [r.status for r in cloud_api.requests][-1] == 403


def bedrock_session(tmp_path: Path, api: FakeAPI, monkeypatch: pytest.MonkeyPatch) -> Any:
    from mdspec.agents.agent import AnthropicSession

    for k, v in bedrock_env(api).items():
        monkeypatch.setenv(k, v)
    (tmp_path / "wt").mkdir()
    ctx = RunContext(
        worktree=tmp_path / "wt",
        run_dir=tmp_path / "run",
        system_prompt="You implement specs.",
        task_prompt="Implement spec/a.md.",
        agent=AgentConfig(provider="bedrock", model=BEDROCK_MODEL),
        protected=("spec/**",),
        env={"PATH": os.environ["PATH"]},
    )
    return AnthropicSession(ctx, bash_timeout=10)  # the default client: the provider's own


@pytest.mark.parametrize("fault", ["truncated", "dropped"])
def test_a_bedrock_event_stream_cut_short_is_a_failure_not_the_end_of_the_turn(
    fault: str, tmp_path: Path, cloud_api: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    if fault == "truncated":  # whole frames, then the response ends cleanly without message_stop
        cloud_api.truncate("Done: all of it was implemented.", events=5)
    else:  # the connection closes in the middle of a frame
        cloud_api.drop("Done: all of it was implemented.", keep=0.6)
    result = bedrock_session(tmp_path, cloud_api, monkeypatch).start()
    assert result.stopped_by == "error"
    assert result.final_text == ""
    assert result.error
    assert "\n" not in result.error
    if fault == "truncated":
        assert "ended without message_stop" in result.error
        assert "req_fake" in result.error
    assert [r.path for r in cloud_api.requests] == [f"/model/{BEDROCK_MODEL}/invoke-with-response-stream"]


# --- doctor ---------------------------------------------------------------------------------------------


def doctor_backend_line(repo: Repo, env: dict[str, str]) -> str:
    out = repo.mdspec("doctor", check=False, env=env).stdout
    lines = [ln for ln in out.splitlines() if "built-in agent" in ln]
    assert len(lines) == 1, out
    return lines[0]


def test_doctor_names_the_provider_and_the_credentials_it_found(repo: Repo, cloud_api: FakeAPI, tmp_path: Path) -> None:
    repo.write(".mdspec.toml", '[agent]\nprovider = "bedrock"\n')
    line = doctor_backend_line(repo, {"AWS_REGION": "eu-west-1"})
    assert line.startswith("FIX  built-in agent on Amazon Bedrock (provider bedrock): ")
    assert "found no AWS credentials" in line
    line = doctor_backend_line(repo, bedrock_env(cloud_api))
    model = config.PROVIDER_MODELS["bedrock"]
    assert line == (
        f"OK   built-in agent on Amazon Bedrock (provider bedrock), model {model}, "
        "region eu-west-1, AWS credentials (env)"
    )

    repo.write(".mdspec.toml", f'[agent]\nprovider = "vertex"\nmodel = "{VERTEX_MODEL}"\n')
    line = doctor_backend_line(repo, {"CLOUD_ML_REGION": "us-east5"})
    assert line.startswith(
        'FIX  built-in agent on Google Vertex AI (provider vertex): agent.provider = "vertex" '
        "found no Google credentials: run `gcloud auth application-default login`"
    )
    line = doctor_backend_line(repo, vertex_env(cloud_api, tmp_path))
    assert line == (
        f"OK   built-in agent on Google Vertex AI (provider vertex), model {VERTEX_MODEL}, region "
        "us-east5, project proj-42, service account mdspec-test@fake-project.iam.gserviceaccount.com"
    )

    repo.write(".mdspec.toml", "")
    line = doctor_backend_line(repo, {"ANTHROPIC_API_KEY": FAKE_KEY})
    assert line == (
        "OK   built-in agent on the Anthropic API (provider anthropic), model claude-sonnet-5-5, "
        "API key set (ANTHROPIC_API_KEY)"
    )
    assert FAKE_KEY not in line
    assert cloud_api.token_requests == 0
