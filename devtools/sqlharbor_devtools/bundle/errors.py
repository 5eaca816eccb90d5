"""Errors of the agent bundle build (``sqlharbor-dev bundle build``), on the tree in
sqlharbor.errors.

Raised by every module of :mod:`sqlharbor_devtools.bundle`; the CLI turns them into a message
and a non-zero exit, ``tests/integration/test_agent_bundle.py`` into a failure.
"""

from __future__ import annotations

from sqlharbor.errors import PermanentError


class BundleError(PermanentError):
    """The agent bundle could not be built (a step failed; its output is in the message)."""

    code = "AgentBundleBuildFailure"
    remediation = (
        "Read the failed step's output above; `--refresh` downloads the dependency wheels again."
    )
