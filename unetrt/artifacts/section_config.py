"""What every manifest section shares: the pydantic configuration, the field types, and the rule that a
``manifest.json`` read from disk has every field (C++ readers rely on it), while code may still build a
section from a partial dict (defaults fill the rest).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, ConfigDict, Field, ValidationInfo, model_validator
from pydantic.dataclasses import dataclass
from pydantic_core import PydanticCustomError
from typing_extensions import dataclass_transform

__all__ = ["SECTION_CONFIG", "Json", "Sha256", "PosInt", "NonNegInt", "ArtifactPath", "section", "COMPLETE"]

SECTION_CONFIG = ConfigDict(extra="forbid", validate_assignment=True, json_schema_serialization_defaults_required=True)
#: Validation context under which every field must be present (what :meth:`Manifest.from_dict` reads with).
COMPLETE = {"complete": True}

Json = Any  # free-form JSON value (informational fields)
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
PosInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]


def _inside_export(path: str) -> str:
    """A path relative to the export directory that stays inside it (readers join it to the directory)."""
    parts = path.replace("\\", "/").split("/")
    if not path or path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":") or ".." in parts:
        raise PydanticCustomError("path_outside_export",
                                  "an artifact path must stay inside the export directory (relative, "
                                  "no '..')")
    return path


#: The ``path`` of an artifact entry: relative to the export directory, never outside it.
ArtifactPath = Annotated[str, AfterValidator(_inside_export)]

T = TypeVar("T")


@dataclass_transform(field_specifiers=(dataclasses.field, Field))
def section(cls: type[T]) -> type[T]:
    """A pydantic dataclass with :data:`SECTION_CONFIG` whose fields are all required under :data:`COMPLETE`.

    The missing field is reported as a pydantic ``missing`` error whose ``ctx["field"]`` names it.
    """
    wanted = [name for name in cls.__dict__.get("__annotations__", {}) if not name.startswith("_")]

    def every_field(data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and (info.context or {}).get("complete"):
            for name in wanted:
                if name not in data:
                    raise PydanticCustomError("missing", "field required", {"field": name})
        return data

    every_field.__name__ = f"_every_field_of_{cls.__name__}"
    setattr(cls, "_every_field", model_validator(mode="before")(every_field))  # type: ignore[arg-type]
    return dataclass(config=SECTION_CONFIG)(cls)  # type: ignore[return-value]


