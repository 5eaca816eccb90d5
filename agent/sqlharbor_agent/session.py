"""The agent session: a stable agent id (per VM) plus a fresh session id per process start.

Jobs record ``<agentId>/<sessionId>`` (``api.contract.AgentSession``) and the session's
public key (``SessionKey``, in memory only), to which the operator seals each job's grant;
a restarted agent
fails the jobs its previous session left Running, and the operator fails jobs whose
session's Lease expired.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from sqlharbor.api.contract import AgentSession
from sqlharbor.api.contract.sealing import SessionKey
from sqlharbor_agent import __version__


@dataclass(frozen=True)
class Session:
    agent_id: str
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    version: str = __version__
    #: this process's key pair: its claims carry the public half, grants are sealed to it
    key: SessionKey = field(default_factory=SessionKey, compare=False)

    @property
    def identity(self) -> AgentSession:
        return AgentSession(self.agent_id, self.session_id)

    @property
    def token(self) -> str:
        """What jobs record as ``status.agentSession``."""
        return self.identity.token

    def owns(self, token: str | None) -> bool:
        return token == self.token

    def previous_session_of_mine(self, token: str | None) -> bool:
        other = AgentSession.parse(token)
        return other is not None and other != self.identity and other.agent_id == self.agent_id
