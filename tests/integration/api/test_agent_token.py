"""The agent's own credential on the real API server: the bootstrap token is exchanged for
a fresh one at start and written back to its kubeconfig (owner-only), renewal repeats
before the token ends, and a revoked or expired identity stops the agent with a message
that says how to enrol it again."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlharbor_agent.credentials import TokenRenewer
from sqlharbor_devtools.devenv import ControlPlane

from sqlharbor.kube import KubeClient
from sqlharbor.kube.agents import AgentAccounts, IssuedToken, token_kubeconfig, token_subject


def _run_agent(config: Path) -> subprocess.CompletedProcess[str]:
    """``sqlharbor-agent run`` as a real process, for the checks it makes before serving."""
    return subprocess.run(
        [sys.executable, "-m", "sqlharbor_agent", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _token_in(path: Path) -> str:
    return str(yaml.safe_load(path.read_text())["users"][0]["user"]["token"])


@pytest.fixture
def enrolled(control_plane: ControlPlane, namespace: str, tmp_path: Path) -> Path:
    admin = KubeClient.from_kubeconfig(str(control_plane.kubeconfig))
    accounts = AgentAccounts(admin, namespace)
    accounts.ensure("vm1", secrets=())
    issued = accounts.issue_token("vm1", 600)
    configuration = admin.api_client.configuration
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            token_kubeconfig(
                server=configuration.host,
                ca_data=Path(configuration.ssl_ca_cert).read_bytes(),
                namespace=namespace,
                user="sqlharbor-agent-vm1",
                token=issued.token,
            )
        )
    )
    return path


def test_the_agent_exchanges_and_renews_its_own_token(enrolled: Path, namespace: str) -> None:
    bootstrap = _token_in(enrolled)
    assert token_subject(bootstrap) == (namespace, "sqlharbor-agent-vm1")
    client = KubeClient.from_kubeconfig(str(enrolled))
    stop = threading.Event()
    renewer = TokenRenewer(client, enrolled, 600, stop)
    assert renewer.enabled

    first = renewer.renew()
    assert _token_in(enrolled) == first.token != bootstrap
    assert enrolled.stat().st_mode & 0o777 == 0o600
    assert client.bearer_token() == first.token
    # what a request really sends (the kubeconfig loader's refresh hook runs here)
    sent = client.api_client.configuration.auth_settings()["BearerToken"]["value"]
    assert sent == f"Bearer {first.token}"
    assert first.expires > datetime.now(UTC) + timedelta(seconds=500)
    client.list_raw("SqlInstance", namespace)  # the new token works

    # a token near its end is renewed by the loop at once
    renewer._issued = IssuedToken(first.token, datetime.now(UTC) + timedelta(seconds=1))
    thread = threading.Thread(target=renewer.run, daemon=True)
    thread.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=30)
        while _token_in(enrolled) == first.token:
            assert datetime.now(UTC) < deadline, "the loop did not renew"
            stop.wait(0.05)
    finally:
        stop.set()
        thread.join(10)
    sent = client.api_client.configuration.auth_settings()["BearerToken"]["value"]
    assert sent == f"Bearer {_token_in(enrolled)}"
    client.list_raw("SqlInstance", namespace)


def test_renewal_follows_the_lifetime_granted_not_the_one_asked_for() -> None:
    """An API server capping tokens (--service-account-max-token-expiration) must not make
    the agent renew in a loop: two thirds of what was granted, from when it was asked."""
    asked = datetime(2026, 12, 1, tzinfo=UTC)
    granted = IssuedToken("t", expires=asked + timedelta(hours=1), issued=asked)
    assert granted.renew_at(2 / 3) == asked + timedelta(minutes=40)


def test_a_certificate_client_is_left_alone(control_plane: ControlPlane) -> None:
    admin = KubeClient.from_kubeconfig(str(control_plane.kubeconfig))
    assert not TokenRenewer(admin, None, 600, threading.Event()).enabled


def test_a_revoked_agent_refuses_to_start_and_says_how_to_enrol_again(
    control_plane: ControlPlane,
    enrolled: Path,
    namespace: str,
    tmp_path: Path,
) -> None:
    admin = KubeClient.from_kubeconfig(str(control_plane.kubeconfig))
    assert AgentAccounts(admin, namespace).revoke("vm1")
    config = tmp_path / "agent.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "kubeconfig": str(enrolled),
                "namespace": namespace,
                "agentId": "vm1",
                "instances": [{"name": "sim1", "engine": "simulated"}],
            }
        )
    )
    result = _run_agent(config)
    assert result.returncode == 2, result.stderr
    assert "cannot renew the agent's API token" in result.stderr
    assert "kubectl sqlharbor agent enroll vm1" in result.stderr
    assert _token_in(enrolled) not in result.stderr + result.stdout


def test_an_agent_id_that_is_not_its_identity_is_refused_at_start(
    enrolled: Path, namespace: str, tmp_path: Path
) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "kubeconfig": str(enrolled),
                "namespace": namespace,
                "agentId": "vm2",
                "instances": [{"name": "sim1", "engine": "simulated"}],
            }
        )
    )
    result = _run_agent(config)
    assert result.returncode == 2, result.stderr
    assert "belongs to ServiceAccount sqlharbor-agent-vm1" in result.stderr
    assert "agentId vm2" in result.stderr
