"""Vault keys for tests: RSA wrapping keys made once per test process (RSA-3072 generation
takes a fraction of a second, and most tests need just one or two distinct keys)."""

from __future__ import annotations

import functools

from sqlharbor.vault.keyring import Keyring
from sqlharbor.vault.wrapping import SecretRsaKey


@functools.cache
def _generated(number: int) -> SecretRsaKey:
    return SecretRsaKey.generate()


def rsa_key(number: int = 0) -> SecretRsaKey:
    """Key ``number`` of this process: the same object each time, distinct per number."""
    return _generated(number)


def keyring(*numbers: int) -> Keyring:
    """A keyring of ``rsa_key(n)`` for each number, the first current (default: key 0)."""
    return Keyring([rsa_key(n) for n in numbers or (0,)])
