"""Which Debian packages the image holds, and fetching them: bookworm's python3.11 and the
libraries it links, CA certificates, time zones and the base files, nothing else.

Called by :mod:`.baseroot`.  ``mmdebstrap --variant=extract`` resolves and downloads the
roots' dependency closure from the mirror (verified against the host's Debian archive
keyring, as apt does); :func:`installed_set` then keeps what the image runs, leaving out the
packages wanted only by maintainer scripts or for managing packages (``dpkg``, ``debconf``,
``mawk``) and whatever only they pulled in (``tar``, ``perl-base``...).  No maintainer
script runs: :mod:`.baseroot` does by hand the little they would have done.  The result has
no shell, no package manager and no Perl.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlharbor_devtools.image.errors import ImageError
from sqlharbor_devtools.image.host import Progress, run

SUITE = "bookworm"
ARCH = "amd64"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"

#: what the operator needs at run time; dependencies come with them
ROOTS: tuple[str, ...] = (
    "python3.11-minimal",  # the interpreter (3.11, as the product's wheels)
    "libpython3.11-stdlib",  # the rest of the standard library (ssl, sqlite3, ctypes...)
    "ca-certificates",  # Mozilla's CA bundle (Azure Blob over HTTPS)
    "tzdata",  # zoneinfo for policies' time zones
    "netbase",  # /etc/services, /etc/protocols
    "base-files",  # /etc/os-release (scanners), the directory skeleton, licenses
)

#: needed only to run maintainer scripts or manage packages: never in the image
NOT_INSTALLED: frozenset[str] = frozenset({"dpkg", "debconf", "mawk"})


def sources(mirror: str, security_mirror: str) -> tuple[str, ...]:
    """The sources.list lines: the release, its updates and its security updates."""
    return (
        f"deb {mirror} {SUITE} main",
        f"deb {mirror} {SUITE}-updates main",
        f"deb {security_mirror} {SUITE}-security main",
    )


@dataclass(frozen=True)
class Package:
    """One downloaded .deb: its control fields and where it is."""

    name: str
    version: str
    deb: Path
    control: str
    depends: tuple[tuple[str, ...], ...]  # groups of alternatives (Pre-Depends and Depends)
    provides: tuple[str, ...]


def download(work: Path, source_lines: Sequence[str], progress: Progress) -> list[Path]:
    """Resolve :data:`ROOTS` against ``source_lines`` and download the closure into ``work``.

    mmdebstrap also extracts everything into ``work/dl``; only its package cache is kept
    (``--skip=cleanup/apt/cache``) and the tree is thrown away with ``work``.
    """
    target = work / "dl"
    progress(f"resolving and downloading Debian {SUITE} packages with mmdebstrap...")
    run(
        [
            "mmdebstrap",
            "--mode=root",
            "--variant=extract",
            f"--architectures={ARCH}",
            f"--include={','.join(ROOTS)}",
            "--skip=cleanup/apt/cache",
            '--aptopt=Acquire::Retries "3"',
            SUITE,
            str(target),
            *source_lines,
        ],
        what="mmdebstrap",
        timeout=900,
    )
    debs = sorted((target / "var" / "cache" / "apt" / "archives").glob("*.deb"))
    if not debs:
        raise ImageError("mmdebstrap downloaded no packages")
    return debs


def read_package(deb: Path) -> Package:
    """The control fields of ``deb`` (``dpkg-deb --field``)."""
    control = run(["dpkg-deb", "--field", str(deb)], what=f"dpkg-deb --field {deb.name}")
    fields = parse_control(control)
    depends = parse_depends(", ".join(fields.get(k, "") for k in ("Pre-Depends", "Depends")))
    return Package(
        name=fields["Package"],
        version=fields["Version"],
        deb=deb,
        control=control.rstrip("\n") + "\n",
        depends=depends,
        provides=tuple(alt[0] for alt in parse_depends(fields.get("Provides", ""))),
    )


def parse_control(text: str) -> dict[str, str]:
    """One control paragraph: ``Field: value`` lines, continuation lines joined."""
    fields: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and key:
            fields[key] += "\n" + line
        elif ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


_NAME = re.compile(r"^\s*([a-z0-9][a-z0-9+.-]*)")


def parse_depends(text: str) -> tuple[tuple[str, ...], ...]:
    """``a (>= 1) | b, c:any`` → ``(("a", "b"), ("c",))`` (versions and arch qualifiers go)."""
    groups = []
    for group in text.split(","):
        names = tuple(m.group(1) for alt in group.split("|") if (m := _NAME.match(alt)))
        if names:
            groups.append(names)
    return tuple(groups)


def installed_set(
    packages: Iterable[Package],
    roots: Sequence[str] = ROOTS,
    excluded: Iterable[str] = NOT_INSTALLED,
) -> list[Package]:
    """The closure of ``roots`` over Depends/Pre-Depends, never entering ``excluded``.

    A dependency group is satisfied by its first alternative (or a provider of it) that was
    downloaded and is not excluded; a group that only excluded packages could satisfy is
    dropped (they serve maintainer scripts, which never run here).  A group nothing
    downloaded satisfies is an error: the mirror and the resolver disagree.
    """
    by_name = {p.name: p for p in packages}
    providers: dict[str, list[str]] = {}
    for p in by_name.values():
        for virtual in p.provides:
            providers.setdefault(virtual, []).append(p.name)
    skip = frozenset(excluded)
    keep: dict[str, Package] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        if name not in by_name:
            raise ImageError(f"Debian package {name} was not downloaded")
        package = keep[name] = by_name[name]
        for group in package.depends:
            choice = _satisfy(group, by_name, providers, skip)
            if choice is not None:
                todo.append(choice)
    return sorted(keep.values(), key=lambda p: p.name)


def _satisfy(
    group: Sequence[str],
    by_name: Mapping[str, Package],
    providers: Mapping[str, list[str]],
    skip: frozenset[str],
) -> str | None:
    candidates: list[str] = []
    for alt in group:
        if alt in by_name:
            candidates.append(alt)
        candidates.extend(sorted(providers.get(alt, ())))
    usable = [c for c in candidates if c not in skip]
    if usable:
        return usable[0]
    if candidates or any(alt in skip for alt in group):
        return None
    raise ImageError(f"no downloaded package satisfies the dependency {' | '.join(group)}")
