"""The dev control plane's audit log: who wrote what, as the API server saw it.

``_apiserver_argv`` (``controlplane``) starts kube-apiserver with ``argv(layout)``; tests
read it back with ``events`` (``ControlPlane.audit_events``) to prove things a process
cannot vouch for itself: that a deposed operator replica wrote nothing after another took
over (each replica's user agent names it), and which Secrets the operator read.

The policy keeps the log small: metadata only (never a Secret's body: no Secret value is
ever written), for writes to sqlharbor's kinds, Leases and Events, and for every Secret
access; created jobs with their bodies (a generated name is only in the response).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

POLICY: dict[str, Any] = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {  # the created job's name (generateName) is only in the response
            "level": "RequestResponse",
            "verbs": ["create"],
            "resources": [{"group": "sqlharbor.io", "resources": ["backupjobs", "restorejobs"]}],
        },
        {
            "level": "Metadata",
            "verbs": ["create", "update", "patch", "delete", "deletecollection"],
            "resources": [
                {"group": "sqlharbor.io"},
                {"group": "coordination.k8s.io"},
                {"group": "events.k8s.io"},
            ],
        },
        {"level": "Metadata", "resources": [{"group": "", "resources": ["secrets"]}]},
        {"level": "None"},
    ],
}


def argv(policy: Path, log: Path) -> list[str]:
    """kube-apiserver flags for an audit log at ``log`` (``policy`` is written here)."""
    policy.write_text(yaml.safe_dump(POLICY))
    return [
        f"--audit-policy-file={policy}",
        f"--audit-log-path={log}",
        "--audit-log-format=json",
        "--audit-log-mode=blocking",  # an event is on disk before its response is sent
        "--audit-log-maxsize=200",
        "--audit-log-maxbackup=1",
    ]


@dataclass(frozen=True)
class AuditEvent:
    verb: str
    user: str
    user_agent: str
    resource: str  # plural, with "/subresource" when there is one
    namespace: str
    name: str
    code: int
    received: datetime

    @classmethod
    def parse(cls, doc: dict[str, Any]) -> AuditEvent:
        ref = doc.get("objectRef") or {}
        resource = str(ref.get("resource", ""))
        if ref.get("subresource"):
            resource += f"/{ref['subresource']}"
        stamp = str(doc.get("requestReceivedTimestamp", "")).replace("Z", "+00:00")
        created = ((doc.get("responseObject") or {}).get("metadata") or {}).get("name")
        return cls(
            verb=str(doc.get("verb", "")),
            user=str((doc.get("user") or {}).get("username", "")),
            user_agent=str(doc.get("userAgent", "")),
            resource=resource,
            namespace=str(ref.get("namespace", "")),
            name=str(ref.get("name") or created or ""),
            code=int((doc.get("responseStatus") or {}).get("code", 0)),
            received=datetime.fromisoformat(stamp),
        )


def events(log: Path) -> list[AuditEvent]:
    """Every event in the audit log so far (the current file), oldest first."""
    if not log.is_file():
        return []
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if line.strip():
            try:
                found.append(AuditEvent.parse(json.loads(line)))
            except (ValueError, KeyError):
                continue  # a line being written right now
    return found
