"""Reading the YAML data files of ``layers/``: strict parsing and problems that name file, entry and problem.

Shared by the catalogue (``catalog.py``) and the rules (``rules.py``): duplicate keys are refused (PyYAML would
keep the last one silently), every problem in a file is collected and raised together as one
:class:`~gis_platform.errors.CatalogError`, and pydantic errors are turned into short human sentences.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic import Field as PydanticField

from gis_platform.errors import CatalogError


class FrozenModel(BaseModel):
    """Base of every model read from a data file: immutable, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def require_str(value: Any) -> Any:
    """Reject non-strings for code-like keys, with a hint about YAML's number parsing."""
    if not isinstance(value, str):
        raise ValueError(
            f"must be a quoted string, got {type(value).__name__} {value!r} "
            "(YAML reads unquoted 0101 as the octal number 65 and 01 as 1: write '0101')"
        )
    return value.strip()


#: A code (layer, land-use, DLBM …): a quoted string in YAML, never a number.
CodeStr = Annotated[str, BeforeValidator(require_str)]
NonEmptyStr = Annotated[str, PydanticField(min_length=1)]


class UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate mapping keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"duplicate key {key!r}",
                key_node.start_mark,
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class Problems:
    """Collects the problems of one file; raises them together as one :class:`CatalogError`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[tuple[str, str]] = []

    def add(self, entry: str, problem: str) -> None:
        self.items.append((entry, problem))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        lines = [f"{self.path}: {entry}: {problem}" for entry, problem in self.items]
        first_entry, first_problem = self.items[0]
        raise CatalogError(
            "\n".join(lines),
            file=str(self.path),
            entry=first_entry,
            problem=first_problem,
            problems=[{"entry": e, "problem": p} for e, p in self.items],
        )


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def describe_validation_error(error: ValidationError) -> list[str]:
    """Human-readable problems from a pydantic error (one per pydantic error)."""
    problems: list[str] = []
    for err in error.errors(include_url=False):
        loc = tuple(err["loc"])
        where = _format_loc(loc)
        kind = err["type"]
        if kind == "extra_forbidden":
            parent = _format_loc(loc[:-1])
            problems.append(f"unknown key {loc[-1]!r}" + (f" in {parent}" if parent else ""))
            continue
        if kind == "missing":
            problems.append(f"missing key {where!r}")
            continue
        ctx = err.get("ctx") or {}
        message = str(ctx["error"]) if kind == "value_error" and "error" in ctx else err["msg"]
        value = err.get("input")
        shown = f" (got {value!r})" if kind != "value_error" and isinstance(value, (str, int, float, bool)) else ""
        problems.append(f"{where}: {message}{shown}" if where else f"{message}{shown}")
    return problems


_M = TypeVar("_M", bound=BaseModel)


def validate_entry(model: type[_M], raw: Any, problems: Problems, entry: str) -> _M | None:
    """Validate ``raw`` as ``model``; on failure record the problems under ``entry`` and return None."""
    if not isinstance(raw, Mapping):
        problems.add(entry, f"expected a mapping of keys, got {type(raw).__name__} {raw!r}")
        return None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        for problem in describe_validation_error(exc):
            problems.add(entry, problem)
        return None


def read_yaml(path: Path) -> tuple[Any, bytes]:
    """Parse one YAML file; syntax errors become CatalogErrors with the line and column."""
    if not path.is_file():
        raise CatalogError(
            f"{path}: (file): catalogue file is missing", file=str(path), entry="(file)", problem="missing"
        )
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CatalogError(
            f"{path}: (file): not UTF-8 text (byte {exc.start})", file=str(path), entry="(file)", problem="not UTF-8"
        ) from exc
    try:
        parsed = yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "unknown position"
        context = getattr(exc, "context", None)
        context_mark = getattr(exc, "context_mark", None)
        detail = f"{context}: {problem}" if context else str(problem)
        if context_mark is not None and mark is not None and context_mark.line != mark.line:
            detail += f" (the enclosing construct starts at line {context_mark.line + 1})"
        kind = "YAML error" if isinstance(exc, yaml.constructor.ConstructorError) else "YAML syntax error"
        message = f"{kind} at {where}: {detail}"
        raise CatalogError(
            f"{path}: (syntax): {message}",
            file=str(path),
            entry="(syntax)",
            problem=message,
            line=mark.line + 1 if mark is not None else None,
        ) from exc
    return parsed, data


def entry_label(kind: str, raw: Any, index: int, key: str = "code") -> str:
    if isinstance(raw, Mapping) and raw.get(key) is not None:
        return f"{kind} {str(raw.get(key))!r}"
    return f"{kind} #{index + 1} (no {key})"
