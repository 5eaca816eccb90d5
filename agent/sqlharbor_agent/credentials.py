"""The agent's own API credential: it exchanges the bootstrap token ``agent enroll`` printed
for a fresh one at start, renews it before two thirds of its life are gone, and keeps the
kubeconfig file current so a restart finds a valid token.  Only its own ServiceAccount's
token can be requested (its Role allows ``serviceaccounts/token`` for that name only), so
no long-lived token Secret exists anywhere.

Started by ``main.run``.  Credentials that are not a ServiceAccount token (a development
client certificate) are left alone.  The token never reaches a log line.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

from sqlharbor.errors import SqlHarborError
from sqlharbor.kube import KubeClient
from sqlharbor.kube.agents import IssuedToken, replace_token, request_token, token_subject

log = logging.getLogger(__name__)

#: Renew when this share of the token's life is gone (kubelet renews projected tokens at 80%).
RENEW_AT = 2 / 3
#: Retry a failed renewal after this many seconds (less when the token is about to end).
RETRY_SECONDS = 30.0


class TokenRenewer:
    def __init__(
        self,
        client: KubeClient,
        kubeconfig: Path | None,
        seconds: int,
        stop: threading.Event,
    ) -> None:
        self._client = client
        self._kubeconfig = kubeconfig
        self._seconds = seconds
        self._stop = stop
        token = client.bearer_token()
        self._subject = token_subject(token) if token else None
        self._issued: IssuedToken | None = None

    @property
    def account(self) -> str | None:
        """The ServiceAccount the token was issued for (None: not a ServiceAccount token)."""
        return self._subject[1] if self._subject else None

    @property
    def enabled(self) -> bool:
        """Whether the client authenticates with a ServiceAccount token at all."""
        return self._subject is not None

    def renew(self) -> IssuedToken:
        """Request a new token now and use it from the next call on (raises on failure)."""
        assert self._subject is not None
        namespace, account = self._subject
        issued = request_token(self._client, namespace, account, self._seconds)
        self._client.use_bearer_token(issued.token)
        self._issued = issued
        if self._kubeconfig is not None:
            try:
                replace_token(self._kubeconfig, issued.token)
            except OSError as exc:
                log.warning(
                    "cannot write the renewed token to %s (%s): a restart after %s needs a "
                    "new bootstrap kubeconfig (kubectl sqlharbor agent enroll)",
                    self._kubeconfig,
                    exc.strerror,
                    issued.expires.isoformat(),
                )
        log.info(
            "API token of ServiceAccount %s/%s renewed, valid until %s",
            namespace,
            account,
            issued.expires.isoformat(),
        )
        return issued

    def run(self) -> None:
        """Renew until ``stop``, when two thirds of the lifetime the API server granted are
        gone; a failed renewal is retried while the token lasts, and logged."""
        while self._issued is not None:
            issued = self._issued
            wait = (issued.renew_at(RENEW_AT) - datetime.now(UTC)).total_seconds()
            if self._stop.wait(max(0.0, wait)):
                return
            try:
                self.renew()
            except Exception as exc:  # the thread must outlive any failure
                left = (issued.expires - datetime.now(UTC)).total_seconds()
                detail = exc.message if isinstance(exc, SqlHarborError) else type(exc).__name__
                log.warning("cannot renew the API token (%s seconds left): %s", int(left), detail)
                if self._stop.wait(min(RETRY_SECONDS, max(left / 4, 1.0))):
                    return
