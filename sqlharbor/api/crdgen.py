"""Generate CustomResourceDefinitions from the models (``make crds`` / ``sqlharbor crds``).

The pydantic JSON schema is turned into a Kubernetes *structural* schema: references are
inlined, ``anyOf [X, null]`` becomes ``X`` (optional fields are simply not required),
titles and null defaults are dropped, and ``additionalProperties: false`` is removed
(structural schemas forbid it next to ``properties``; unknown fields are refused by the
API server's strict field validation instead).  Every property must carry a description,
so ``kubectl explain`` teaches the whole API; a missing one is an error here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from sqlharbor.api._base import GROUP, VERSION
from sqlharbor.api.resources import KINDS, Kind
from sqlharbor.errors import SchemaError

Schema = dict[str, Any]

_DROP = {"title", "discriminator"}


def _resolve(node: Any, defs: dict[str, Schema]) -> Any:
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        merged = {**_resolve(target, defs), **{k: v for k, v in node.items() if k not in _DROP}}
        if "description" in node:
            merged["description"] = node["description"]
        return _resolve(merged, defs)
    if "allOf" in node and len(node["allOf"]) == 1:
        inner = node.pop("allOf")[0]
        return _resolve({**inner, **node}, defs)
    if "anyOf" in node:
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if len(options) != 1:
            raise SchemaError(f"union types are not structural: {options}")
        return _resolve({**options[0], **node}, defs)
    out: Schema = {}
    for key, value in node.items():
        if key in _DROP or (key == "default" and value is None):
            continue
        if key == "properties":
            out[key] = {name: _resolve(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _resolve(value, defs)
        else:
            out[key] = value
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if "properties" in out and out.get("additionalProperties") is False:
        del out["additionalProperties"]
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out


def _check_descriptions(schema: Schema, path: str) -> None:
    for name, sub in schema.get("properties", {}).items():
        if not sub.get("description"):
            raise SchemaError(f"{path}.{name} has no description")
        _check_descriptions(sub, f"{path}.{name}")
    if "items" in schema:
        _check_descriptions(schema["items"], f"{path}[]")


def structural_schema(model: type[BaseModel], path: str) -> Schema:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    schema: Schema = _resolve(raw, raw.get("$defs", {}))
    schema.pop("$defs", None)
    _check_descriptions(schema, path)
    return schema


def crd_for(kind: Kind) -> dict[str, Any]:
    spec = structural_schema(kind.spec, ".spec")
    status = structural_schema(kind.status, ".status")
    status["description"] = f"Observed state of the {kind.kind} (written by sqlharbor)."
    if kind.phases is not None:
        status["x-kubernetes-validations"] = kind.phases.cel_rules()
    root = {
        "type": "object",
        "description": kind.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of this object."},
            "kind": {"type": "string", "description": "Kind of this object."},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    columns = [
        {
            "name": c.name,
            "type": c.type,
            "jsonPath": c.json_path,
            **({"description": c.description} if c.description else {}),
            **({"priority": c.priority} if c.priority else {}),
        }
        for c in kind.columns
    ]
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": root},
        "subresources": {"status": {}},
        "additionalPrinterColumns": columns,
    }
    if kind.selectable_fields:
        version["selectableFields"] = [{"jsonPath": p} for p in kind.selectable_fields]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": list(kind.short_names),
                "categories": ["sqlharbor"],
            },
            "scope": "Namespaced",
            "versions": [version],
        },
    }


#: Where ``make crds`` writes (generated files only; ``config/crd/kustomization.yaml``,
#: written by hand, lists them).
DEFAULT_DIRECTORY = Path("config") / "crd" / "bases"


def render(kind: Kind) -> str:
    header = "# Generated from sqlharbor/api by `make crds`. Do not edit.\n"
    return header + yaml.safe_dump(crd_for(kind), sort_keys=False, width=100)


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS:
        path = directory / f"{GROUP}_{kind.plural}.yaml"
        path.write_text(render(kind))
        written.append(path)
    return written


def main() -> None:
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_DIRECTORY)
    for path in write_all(target):
        print(path)


if __name__ == "__main__":
    main()
