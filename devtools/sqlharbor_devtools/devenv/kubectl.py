"""Run kubectl against one kubeconfig: the helper the pytest fixtures and the demo share.

``tests/conftest.py`` hands a :class:`KubectlRunner` to tests as the ``kubectl`` fixture;
the demo uses it to apply samples.  Output is captured and returned, never logged here.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


class KubectlFailed(AssertionError):
    """kubectl exited non-zero where success was required (an AssertionError for pytest)."""


@dataclass(frozen=True)
class KubectlRunner:
    """``runner("get", "ns")`` runs ``kubectl --kubeconfig=<kubeconfig> get ns``."""

    kubectl: Path
    kubeconfig: Path
    timeout: float = 60.0

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl; raise :class:`KubectlFailed` with its stderr if ``check`` and it fails."""
        result = subprocess.run(
            [str(self.kubectl), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=self.timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise KubectlFailed(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result

    def with_kubeconfig(self, kubeconfig: Path) -> KubectlRunner:
        """The same kubectl, as another user (a ServiceAccount kubeconfig, say)."""
        return KubectlRunner(self.kubectl, kubeconfig, self.timeout)
