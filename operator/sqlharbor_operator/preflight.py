"""Start-up check: the API server serves every sqlharbor kind, or the operator does not start.

kopf's resource scanning is off (``handlers.configure``): watching CustomResourceDefinitions
would need a cluster-wide grant the operator otherwise does without (config/rbac).  kopf
then resolves the kinds it watches once, at start-up, and never again, so an operator that
started before the CRDs were established would watch nothing and work from a state that
never changes.  It refuses to start instead, saying why; in a cluster its pod restarts
until the CRDs are there.  Called by ``handlers.configure``.
"""

from __future__ import annotations

from typing import Protocol

from sqlharbor.api import GROUP, KINDS, VERSION


class Discovery(Protocol):
    async def served_plurals(self) -> set[str]: ...


async def not_served(api: Discovery) -> str | None:
    """Why the operator must not start (kinds the API server does not serve), or None."""
    served = await api.served_plurals()
    missing = sorted(k.plural for k in KINDS if k.plural not in served)
    if not missing:
        return None
    return (
        f"the API server does not serve {', '.join(f'{m}.{GROUP}' for m in missing)} "
        f"({GROUP}/{VERSION}): install the CRDs first (kubectl apply -k config/crd), "
        "then start the operator"
    )
