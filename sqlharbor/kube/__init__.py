"""Typed access to the Kubernetes API for the operator, the agent and the CLI.

Wraps the official ``kubernetes`` client: custom objects in and out as
``sqlharbor.api.Resource`` models, status patches with optimistic concurrency, Leases for
agent heartbeats, Events.  API exceptions are translated here (``kube.translate``) into the
sqlharbor error tree (``NotFound``, ``Conflict``, ``TransitionRefused``, ``AccessDenied``,
``TemporaryError`` with the server's Retry-After, ``PermanentError``).
"""

from sqlharbor.kube.client import KubeClient, WatchEvent

__all__ = ["KubeClient", "WatchEvent"]
