"""OCI image layout and archive: layers and config put together with ``umoci``, then tarred.

Called by :mod:`.build` (:func:`assemble`, :func:`archive`) and by ``tests/image``
(:func:`extract_archive`, :func:`image_config`, :func:`unpack`).  ``umoci raw add-layer``
appends each uncompressed layer tar (it gzips it), ``umoci config`` writes the runtime
config (user, entrypoint, working directory, environment, labels), ``umoci gc`` drops the
blobs nothing refers to.  The archive is the layout directory as a plain tar
(``oci-layout``, ``index.json``, ``blobs/``): what ``skopeo copy oci-archive:FILE ...`` and
``podman load -i FILE`` read.  Its one reference name is ``sqlharbor-operator:<version>``.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlharbor_devtools.image.errors import ImageError
from sqlharbor_devtools.image.host import run


@dataclass(frozen=True)
class Layer:
    """An uncompressed layer tar and the history entry that says what made it."""

    tar: Path
    created_by: str
    comment: str = ""


@dataclass(frozen=True)
class RuntimeConfig:
    """The image config's ``config`` section (what a runtime uses to start a container)."""

    entrypoint: Sequence[str]
    user: str
    working_dir: str
    env: Mapping[str, str]
    labels: Mapping[str, str] = field(default_factory=dict)


def assemble(
    layout: Path, ref: str, layers: Sequence[Layer], config: RuntimeConfig, created: str
) -> None:
    """Make the OCI layout ``layout`` holding one image tagged ``ref``."""
    image = f"{layout}:{ref}"
    run(["umoci", "init", "--layout", str(layout)], what="umoci init")
    run(["umoci", "new", "--image", image], what="umoci new")
    for layer in layers:
        history = [f"--history.created={created}", f"--history.comment={layer.comment}"]
        history.append(f"--history.created_by={layer.created_by}")
        run(
            ["umoci", "raw", "add-layer", f"--image={image}", *history, str(layer.tar)],
            what=f"umoci raw add-layer {layer.tar.name}",
        )
    argv = ["umoci", "config", "--image", image, "--no-history", "--created", created]
    argv += ["--os=linux", "--architecture=amd64", "--clear=config.cmd"]
    argv += [f"--config.entrypoint={arg}" for arg in config.entrypoint]
    argv += [f"--config.user={config.user}", f"--config.workingdir={config.working_dir}"]
    argv += [f"--config.env={k}={v}" for k, v in config.env.items()]
    argv += [f"--config.label={k}={v}" for k, v in config.labels.items()]
    argv += [f"--manifest.annotation={k}={v}" for k, v in config.labels.items()]
    run(argv, what="umoci config")
    run(["umoci", "gc", "--layout", str(layout)], what="umoci gc")


def archive(layout: Path, dest: Path) -> None:
    """Tar the layout directory into ``dest`` (written beside it, then renamed into place)."""
    partial = dest.with_name(f".{dest.name}.partial")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in layout.rglob("*") if p.is_file()):
            info = tar.gettarinfo(str(path), arcname=path.relative_to(layout).as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = int(info.mtime)
            info.mode = 0o644
            with path.open("rb") as content:
                tar.addfile(info, content)
    partial.replace(dest)


def extract_archive(archive_path: Path, layout: Path) -> None:
    """Unpack an ``.oci.tar`` back into a layout directory."""
    layout.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive_path) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(layout, filter="data")
        else:  # Python before 3.11.4: the archive is ours, regular files only
            tar.extractall(layout)


def _blob(layout: Path, digest: str) -> Any:
    algorithm, _, value = digest.partition(":")
    return json.loads((layout / "blobs" / algorithm / value).read_text())


def index_refs(layout: Path) -> list[str]:
    """The reference names the layout's index.json lists."""
    index = json.loads((layout / "index.json").read_text())
    return [
        str(m.get("annotations", {}).get("org.opencontainers.image.ref.name", ""))
        for m in index.get("manifests", [])
    ]


def image_manifest(layout: Path, ref: str) -> dict[str, Any]:
    """The manifest the layout tags ``ref``."""
    index = json.loads((layout / "index.json").read_text())
    for descriptor in index.get("manifests", []):
        if descriptor.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref:
            manifest: dict[str, Any] = _blob(layout, descriptor["digest"])
            return manifest
    raise ImageError(f"{layout} has no image tagged {ref} (it has {index_refs(layout)})")


def image_config(layout: Path, ref: str) -> dict[str, Any]:
    """The image config (``architecture``, ``config``, ``rootfs``, ``history``...) of ``ref``."""
    config: dict[str, Any] = _blob(layout, image_manifest(layout, ref)["config"]["digest"])
    return config


def unpack(layout: Path, ref: str, bundle: Path) -> Path:
    """``umoci unpack`` ``ref`` into the runtime bundle ``bundle``; return its rootfs."""
    run(["umoci", "unpack", "--image", f"{layout}:{ref}", str(bundle)], what="umoci unpack")
    return bundle / "rootfs"
