"""The operator's OCI image, built on this machine from package registries only.

No container registry is needed: the base is a minimal Debian bookworm root made from
Debian's packages (``mmdebstrap`` resolves and downloads them, ``dpkg-deb`` unpacks them),
the product wheel is built from the checkout and installed with its dependencies from
PyPI into a venv at ``/opt/sqlharbor``, and ``umoci`` packs the two layers as an OCI image
archive, ``dist/sqlharbor-operator-<version>.oci.tar``.  The image runs as uid/gid 65532
(``sqlharbor``), its entrypoint is ``/opt/sqlharbor/bin/sqlharbor-operator``, and it has no
shell and no package manager.  Used by ``sqlharbor-dev image build`` (``make image``) and
``tests/image``::

    built = build_image(BuildOptions.from_env(repo, repo / "dist"), progress=print)
    built.archive, built.ref, built.compressed_bytes

Modules: :mod:`.build` (the steps, the build record, reuse), :mod:`.debian` (which packages),
:mod:`.baseroot` (the cached base layer), :mod:`.pylayer` (the venv), :mod:`.layers` (layer
tars), :mod:`.oci` (umoci, the archive, reading it back), :mod:`.host` (host tools),
:mod:`.errors`.
"""

from __future__ import annotations

from sqlharbor_devtools.image.build import (
    ENTRYPOINT,
    ENV,
    NAME,
    USER,
    BuildOptions,
    BuiltImage,
    archive_name,
    build_image,
    project,
)
from sqlharbor_devtools.image.errors import ImageError, ImageToolMissingError

__all__ = [
    "ENTRYPOINT",
    "ENV",
    "NAME",
    "USER",
    "BuildOptions",
    "BuiltImage",
    "ImageError",
    "ImageToolMissingError",
    "archive_name",
    "build_image",
    "project",
]
