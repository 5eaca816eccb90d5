"""Building blocks shared by every resource model: the base model, references, conditions,
error info, and the ``cel``/``column`` helpers that attach CRD-only metadata to fields.

The CRD generator (``sqlharbor.api.crdgen``) reads the metadata these helpers attach;
the operator, agent and CLI use the models to parse and build objects.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from sqlharbor.errors import SqlHarborError

GROUP = "sqlharbor.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

#: Go-style duration ("30s", "15m", "1h30m"); CEL's duration() parses the same syntax.
DURATION_PATTERN = r"^([0-9]+(ms|s|m|h))+$"
#: A Kubernetes object name (RFC 1123 subdomain).
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


#: Five cron fields (minute hour day-of-month month day-of-week), each a list of values,
#: ranges and steps within the field's range; or a @macro.  (RE2: no look-arounds.)
def _cron_field(value: str) -> str:
    item = rf"(\*|{value}(-{value})?)(/[0-9]{{1,2}})?"
    return rf"{item}(,{item})*"


_MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_DAYS = "SUN|MON|TUE|WED|THU|FRI|SAT"
CRON_PATTERN = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|"
    + r"\s+".join(
        [
            _cron_field(r"[0-5]?[0-9]"),
            _cron_field(r"(2[0-3]|[01]?[0-9])"),
            _cron_field(r"(3[01]|[12][0-9]|0?[1-9])"),
            _cron_field(rf"(1[0-2]|0?[1-9]|{_MONTHS})"),
            _cron_field(rf"([0-7]|{_DAYS})"),
        ]
    )
    + r")$"
)
#: An LSN as SQL Server prints it: numeric(25,0), kept as a decimal string (wider than int64).
LSN_PATTERN = r"^[0-9]{1,25}$"


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry."""
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    """``json_schema_extra`` carrying CEL rules for a field or a model."""
    return {"x-kubernetes-validations": list(rules)}


class ApiModel(BaseModel):
    """Base of every spec and status model: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict as the API server stores it (aliases, no unset Nones)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class StatusModel(ApiModel):
    """Status parts are read back from the API server; tolerate fields we do not know."""

    model_config = ConfigDict(extra="ignore")


class LocalObjectReference(ApiModel):
    """A reference to another object in the same namespace."""

    name: str = Field(
        description="Name of the referenced object in the same namespace.",
        min_length=1,
        max_length=253,
        pattern=NAME_PATTERN,
    )


class SecretKeyReference(ApiModel):
    """A key inside a Secret in the same namespace."""

    name: str = Field(
        description="Name of the Secret in the same namespace.",
        min_length=1,
        max_length=253,
        pattern=NAME_PATTERN,
    )
    key: str = Field(
        description="Key inside the Secret's data.",
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
    )


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(StatusModel):
    """The Kubernetes condition convention: one observation about one aspect of the object."""

    type: str = Field(description="Aspect this condition describes, e.g. Ready.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="Machine-readable CamelCase reason for the last transition.")
    message: str = Field(default="", description="Human-readable explanation, with the fix.")
    last_transition_time: datetime | None = Field(
        default=None, description="When status last changed."
    )
    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation this condition was computed from."
    )


class ErrorInfo(StatusModel):
    """A failure as users see it: a stable code, what happened, and how to fix it."""

    code: str = Field(description="Stable error code (mirrors Azure Backup's where one exists).")
    message: str = Field(description="What went wrong.")
    remediation: str = Field(default="", description="What to do about it.")
    time: datetime | None = Field(default=None, description="When the error was observed.")

    @classmethod
    def of(cls, error: SqlHarborError, time: datetime | None = None) -> ErrorInfo:
        """How ``error`` is shown in status: its code, message and remediation."""
        return cls(code=error.code, message=error.message, remediation=error.remediation, time=time)
