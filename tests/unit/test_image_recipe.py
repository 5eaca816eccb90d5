"""The image recipe's pure parts (sqlharbor_devtools.image): which Debian packages go in,
layer tars that are the same bytes for the same tree, pip's platform tags, the build
record's reuse rule.  The build itself runs in tests/image."""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

import pytest
from sqlharbor_devtools.image import ImageError, debian, pylayer
from sqlharbor_devtools.image.build import source_digest
from sqlharbor_devtools.image.layers import write_layer


def _package(name: str, depends: str = "", provides: str = "") -> debian.Package:
    return debian.Package(
        name=name,
        version="1",
        deb=Path(f"{name}.deb"),
        control=f"Package: {name}\n",
        depends=debian.parse_depends(depends),
        provides=tuple(a[0] for a in debian.parse_depends(provides)),
    )


def test_depends_lose_versions_and_architecture_qualifiers() -> None:
    parsed = debian.parse_depends("libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, python3:any")
    assert parsed == (("libc6",), ("debconf", "debconf-2.0"), ("python3",))
    assert debian.parse_depends("") == ()


def test_control_paragraphs_keep_continuation_lines() -> None:
    fields = debian.parse_control("Package: tzdata\nDescription: time zones\n and more\n")
    assert fields == {"Package": "tzdata", "Description": "time zones\n and more"}


def test_the_installed_set_leaves_out_what_only_maintainer_scripts_need() -> None:
    downloaded = [
        _package("python3.11-minimal", "libc6, libexpat1"),
        _package("tzdata", "debconf (>= 0.5) | debconf-2.0"),
        _package("debconf", "perl-base", provides="debconf-2.0"),
        _package("perl-base", "libc6"),
        _package("readline-common", "dpkg (>= 1.15.4) | install-info"),
        _package("dpkg", "tar, libc6"),
        _package("tar", "libacl1"),
        _package("libacl1", "libc6"),
        _package("libexpat1", "libc6"),
        _package("libc6", "libgcc-s1"),
        _package("libgcc-s1", "libc6"),
    ]
    kept = debian.installed_set(
        downloaded,
        roots=("python3.11-minimal", "tzdata", "readline-common"),
        excluded={"dpkg", "debconf"},
    )
    assert [p.name for p in kept] == [
        "libc6",
        "libexpat1",
        "libgcc-s1",
        "python3.11-minimal",
        "readline-common",
        "tzdata",
    ]


def test_a_dependency_nothing_downloaded_satisfies_is_an_error() -> None:
    with pytest.raises(ImageError, match="libmissing"):
        debian.installed_set([_package("a", "libmissing")], roots=("a",), excluded=())


def test_a_provider_satisfies_a_virtual_dependency() -> None:
    kept = debian.installed_set(
        [_package("a", "awk"), _package("mawk", provides="awk")], roots=("a",), excluded=()
    )
    assert [p.name for p in kept] == ["a", "mawk"]


def _tree(root: Path) -> None:
    (root / "opt" / "app" / "lib").mkdir(parents=True)
    (root / "opt" / "app" / "lib" / "mod.py").write_text("x = 1\n")
    (root / "opt" / "app" / "bin").mkdir()
    (root / "opt" / "app" / "bin" / "python").symlink_to("/usr/bin/python3.11")
    os.link(root / "opt" / "app" / "lib" / "mod.py", root / "opt" / "app" / "lib" / "same.py")
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/usr/sbin/nologin\n")


def test_layers_are_the_same_bytes_for_the_same_tree(tmp_path: Path) -> None:
    digests = []
    for attempt in ("a", "b"):
        root = tmp_path / attempt
        _tree(root)
        os.utime(root / "etc" / "passwd", (2_000_000_000, 2_000_000_000))
        layer = write_layer(root, tmp_path / f"{attempt}.tar", mtime_clamp=1_700_000_000)
        digests.append(hashlib.sha256(layer.path.read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    with tarfile.open(tmp_path / "a.tar") as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert list(members) == sorted(members)
    assert members["opt/app/lib/same.py"].islnk()
    assert members["opt/app/bin/python"].linkname == "/usr/bin/python3.11"
    assert max(m.mtime for m in members.values()) <= 1_700_000_000
    assert {(m.uname, m.gname) for m in members.values()} == {("", "")}


def test_a_layer_of_some_members_brings_their_parent_directories(tmp_path: Path) -> None:
    _tree(tmp_path / "root")
    layer = write_layer(
        tmp_path / "root", tmp_path / "l.tar", mtime_clamp=1, members=["opt/app/lib"]
    )
    with tarfile.open(layer.path) as tar:
        names = tar.getnames()
    assert names == ["opt", "opt/app", "opt/app/lib", "opt/app/lib/mod.py", "opt/app/lib/same.py"]


def test_pip_gets_every_manylinux_tag_up_to_bookworms_glibc() -> None:
    tags = pylayer.manylinux_platforms()
    assert tags[0] == "manylinux_2_36_x86_64"
    assert "manylinux_2_17_x86_64" in tags
    assert "manylinux2014_x86_64" in tags
    assert "manylinux_2_37_x86_64" not in tags


def test_pins_never_pin_the_product_or_the_dev_tools() -> None:
    pins = pylayer.pins()
    assert not [p for p in pins if p.startswith(("sqlharbor==", "sqlharbor-devtools=="))]
    assert any(p.startswith("kopf==") for p in pins)


def test_the_source_digest_follows_the_product_sources(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for name in pylayer.PRODUCT_SOURCES:
        if name.endswith((".toml", ".md")):
            repo.mkdir(exist_ok=True)
            (repo / name).write_text(name)
        else:
            (repo / name / "__pycache__").mkdir(parents=True)
            (repo / name / "m.py").write_text("x = 1\n")
    first = source_digest(repo, "base")
    (repo / "sqlharbor" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"ignored")
    assert source_digest(repo, "base") == first
    assert source_digest(repo, "other base") != first
    (repo / "operator" / "m.py").write_text("x = 2\n")
    assert source_digest(repo, "base") != first
