"""The committed CRDs are what the models generate, and they are valid structural schemas
that teach the whole API through ``kubectl explain``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sqlharbor.api import crdgen
from sqlharbor.api.resources import KINDS

REPO = Path(__file__).resolve().parents[3]
CRD_KUSTOMIZATION = REPO / "config" / "crd"
CRDS = CRD_KUSTOMIZATION / "bases"


def _committed() -> dict[str, dict[str, Any]]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(CRDS.glob("*.yaml"))}


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


def _schema(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def _properties(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, sub in schema.get("properties", {}).items():
        yield f"{path}.{name}", sub
        yield from _properties(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _properties(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _properties(schema["additionalProperties"], f"{path}{{}}")


def test_crds_are_not_stale(tmp_path: Path) -> None:
    crdgen.write_all(tmp_path)
    generated = sorted(p.name for p in tmp_path.glob("*.yaml"))
    committed = sorted(p.name for p in CRDS.glob("*.yaml"))
    assert generated == committed, (
        "config/crd/bases/ does not hold exactly the generated files: run `make crds` and "
        "commit config/crd/bases/"
    )
    stale = [n for n in generated if (tmp_path / n).read_bytes() != (CRDS / n).read_bytes()]
    assert not stale, (
        f"config/crd/bases/ is stale ({', '.join(stale)}): run `make crds` and commit it"
    )


def test_crd_kustomization_lists_exactly_the_generated_files(tmp_path: Path) -> None:
    """``config/crd/kustomization.yaml`` is written by hand: a kind added to the models
    must be added there too, or ``kubectl apply -k`` would silently leave its CRD out."""
    generated = sorted(f"bases/{p.name}" for p in crdgen.write_all(tmp_path))
    kustomization = yaml.safe_load((CRD_KUSTOMIZATION / "kustomization.yaml").read_text())
    listed = kustomization.get("resources") or []
    assert len(listed) == len(set(listed)), f"listed twice: {listed}"
    assert sorted(listed) == generated, (
        "config/crd/kustomization.yaml must list exactly the generated CRDs: "
        f"missing {sorted(set(generated) - set(listed))}, "
        f"extra {sorted(set(listed) - set(generated))}"
    )


def test_make_crds_writes_where_the_kustomization_reads() -> None:
    assert REPO / crdgen.DEFAULT_DIRECTORY == CRDS
    makefile = (REPO / "Makefile").read_text()
    assert "-m sqlharbor.api.crdgen config/crd/bases" in makefile


def test_one_crd_per_kind() -> None:
    crds = _committed()
    assert sorted(c["spec"]["names"]["kind"] for c in crds.values()) == sorted(
        k.kind for k in KINDS
    )


@pytest.mark.parametrize("name", sorted(p.name for p in CRDS.glob("*.yaml")))
def test_every_property_has_a_description(name: str) -> None:
    schema = _schema(_committed()[name])
    missing = [
        path
        for path, sub in _properties(schema, "")
        if path != ".metadata" and not str(sub.get("description", "")).strip()
    ]
    assert not missing, f"{name}: properties without a description: {missing}"


@pytest.mark.parametrize("name", sorted(p.name for p in CRDS.glob("*.yaml")))
def test_schema_is_structural(name: str) -> None:
    crd = _committed()[name]
    problems = []
    for path, node in _walk(crd):
        if not isinstance(node, dict):
            continue
        for banned in ("$ref", "anyOf", "oneOf", "allOf", "$defs", "definitions"):
            if banned in node:
                problems.append(f"{path}: {banned}")
        if "properties" in node and node.get("additionalProperties") is False:
            problems.append(f"{path}: additionalProperties: false next to properties")
        if "properties" in node and node.get("type") != "object":
            problems.append(f"{path}: properties without type: object")
    assert not problems, f"{name} is not a structural schema: {problems}"


@pytest.mark.parametrize("name", sorted(p.name for p in CRDS.glob("*.yaml")))
def test_every_schema_node_has_a_type(name: str) -> None:
    """Structural schemas need a type on every node (metadata aside, x-kubernetes-* aside)."""
    untyped = []

    def visit(schema: dict[str, Any], path: str) -> None:
        if "type" not in schema and not schema.get("x-kubernetes-int-or-string"):
            untyped.append(path or "<root>")
        for prop, sub in schema.get("properties", {}).items():
            visit(sub, f"{path}.{prop}")
        if isinstance(schema.get("items"), dict):
            visit(schema["items"], f"{path}[]")

    visit(_schema(_committed()[name]), "")
    assert not untyped, f"{name}: schema nodes without a type: {untyped}"


def test_walkers_see_violations() -> None:
    """The checks above can fail: a schema with each defect is caught."""
    bad: dict[str, Any] = {
        "type": "object",
        "properties": {
            "a": {"type": "object", "properties": {"b": {"type": "string"}}},
            "c": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "d": {"type": "object", "properties": {}, "additionalProperties": False},
        },
    }
    assert [p for p, s in _properties(bad, "") if not s.get("description")] == [
        ".a",
        ".a.b",
        ".c",
        ".d",
    ]
    found = [p for p, n in _walk(bad) if isinstance(n, dict) and "anyOf" in n]
    assert found == [".properties.c"]
