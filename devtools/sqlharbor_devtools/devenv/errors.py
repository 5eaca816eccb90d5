"""Errors of the local control plane (``sqlharbor-dev``), on the shared tree in sqlharbor.errors.

Raised by every module of :mod:`sqlharbor_devtools.devenv`; the CLI turns them into a message and a
non-zero exit, the pytest fixtures into a failure (or a skip with a reason when a documented
external tool is absent).
"""

from __future__ import annotations

from sqlharbor.errors import PermanentError


class DevEnvError(PermanentError):
    """The local control plane could not be started, reached or stopped."""

    code = "DevEnvFailure"
    remediation = "Read the component logs under the state directory's logs/ folder."


class ToolMissingError(DevEnvError):
    """An external tool the control plane needs (Go, node, Azurite, kubectl) is absent."""

    code = "DevEnvToolMissing"
    remediation = (
        "Install Go (or set KUBEBUILDER_ASSETS / SQLHARBOR_KUBE_APISERVER and SQLHARBOR_ETCD) "
        "and run `npm ci` in the repository for Azurite."
    )


class NotRunningError(DevEnvError):
    """No control plane is running from the given state directory."""

    code = "DevEnvNotRunning"
    remediation = "Start one with `sqlharbor-dev up`."


class NoCheckoutError(DevEnvError):
    """The dev tools were run outside a sqlharbor checkout (they need its files)."""

    code = "DevEnvNoCheckout"
    remediation = (
        "Run from a sqlharbor checkout (the folder holding devtools/controlplane-go), "
        "or set SQLHARBOR_CHECKOUT to one."
    )
