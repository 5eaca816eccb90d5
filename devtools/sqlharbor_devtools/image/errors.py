"""Errors of the image build (``sqlharbor-dev image build``), on the tree in sqlharbor.errors.

Raised by every module of :mod:`sqlharbor_devtools.image`; the CLI turns them into a message
and a non-zero exit, ``tests/image`` into a failure (or a skip when not running as root).
"""

from __future__ import annotations

from sqlharbor.errors import PermanentError


class ImageError(PermanentError):
    """The operator image could not be built (a step failed; its output is in the message)."""

    code = "ImageBuildFailure"
    remediation = "Read the failed step's output above; `--refresh-base` rebuilds the Debian root."


class ImageToolMissingError(ImageError):
    """A host tool the build needs (mmdebstrap, umoci, dpkg-deb, chroot) is absent or unusable."""

    code = "ImageToolMissing"
    remediation = (
        "Run as root (the build installs what it needs with apt-get), or install it yourself: "
        "apt-get install --no-install-recommends mmdebstrap umoci"
    )
