"""The agent's offline bundles, built on this machine from PyPI packages only.

``make agent-bundle`` (``sqlharbor-dev bundle build --out dist``) writes:

- ``sqlharbor-<version>-py3-none-any.whl``: the product wheel (operator, agent, core; never
  the dev tools or the tests);
- ``sqlharbor-agent-<version>-linux-x86_64.pex``: one file that runs ``sqlharbor-agent``
  with any CPython 3.11-3.14 on x86_64 Linux with glibc 2.28 or newer, holding the product
  with its ``sqlserver`` extra (pyodbc) and its dependencies, never kopf or
  kubernetes_asyncio (the operator's);
- ``sqlharbor-agent-<version>-windows-amd64.zip``: the same as wheels for 64-bit Windows and
  ``install-service.ps1``, which installs them into a venv offline;
- ``sqlharbor-agent-<version>.build.json``: the build record.

Dependency versions are pinned to the build environment's (``.venv``), as the operator
image's are; downloads are cached under ``~/.cache/sqlharbor/agent-bundle/``.  Used by
``sqlharbor-dev bundle build`` and ``tests/integration/test_agent_bundle.py``::

    built = build_bundle(BundleOptions.from_env(repo, repo / "dist"), progress=print)
    built.pex, built.windows_zip, built.wheel, built.reused

Modules: :mod:`.build` (the steps, the record, reuse), :mod:`.targets` (the complete
platforms), :mod:`.wheels` (pins and the cached wheelhouses), :mod:`.pexfile` (the pex),
:mod:`.windows` (the zip), :mod:`.errors`.
"""

from __future__ import annotations

from sqlharbor_devtools.bundle.build import (
    BuiltBundle,
    BundleOptions,
    build_bundle,
    pex_name,
    product_version,
    wheel_name,
    windows_name,
)
from sqlharbor_devtools.bundle.errors import BundleError

__all__ = [
    "BuiltBundle",
    "BundleError",
    "BundleOptions",
    "build_bundle",
    "pex_name",
    "product_version",
    "wheel_name",
    "windows_name",
]
