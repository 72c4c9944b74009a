"""Which fields of a parcel file carry its use and name, and how a use value becomes a 用地用海 class.

A sibling of :mod:`gis_platform.catalog`: the only reader of two files of ``layers/``, validated on load against
the catalogue (every problem of a file reported at once, naming the file and the entry):

* ``parcel_fields.yaml`` — the usual names of the use field (with the classification its values are read in)
  and of the name field, in detection order;
* ``land_use_crosswalk.yaml`` — 三调 地类 → 用地用海 (with ``verify`` marks and the ambiguous codes that are not
  guessed), other names of 用地用海 classes, and names too general to be a use (建设用地 …).

:meth:`ParcelFields.read_use` turns one value of a file into a :class:`UseReading` (the 用地用海 code and how it
was read) or a :class:`UseProblem` (why it cannot be, with the candidates); it never falls back silently.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal, get_args

from pydantic import Field as PydanticField

from gis_platform.catalog import Catalog
from gis_platform.data_files import FrozenModel, NonEmptyStr, Problems, entry_label, read_yaml, validate_entry
from gis_platform.errors import CatalogError, UnknownLandUseError
from gis_platform.land_use_crosswalk import CROSSWALK_FILE, GeneralEntry, NameEntry, SurveyEntry, load_crosswalk

__all__ = [
    "CLASSIFICATIONS",
    "CROSSWALK_FILE",
    "PARCEL_FIELDS_FILE",
    "Classification",
    "FieldInfo",
    "ParcelFields",
    "UseField",
    "UseProblem",
    "UseReading",
    "clear_parcel_fields_cache",
    "code_text",
    "load_parcel_fields",
]

PARCEL_FIELDS_FILE: Final[str] = "parcel_fields.yaml"

Classification = Literal["land_use", "land_survey"]
CLASSIFICATIONS: Final[tuple[str, ...]] = get_args(Classification)
#: How the two classifications are named to a user.
CLASSIFICATION_NAMES: Final[Mapping[str, tuple[str, str]]] = {
    "land_use": ("用地用海分类", "land and sea use (2023 guide)"),
    "land_survey": ("三调地类", "land survey (三调) class"),
}
ReadAs = Literal["code", "name", "crosswalk"]
Reason = Literal["unknown_code", "unknown_name", "ambiguous", "too_general", "name_mismatch"]

#: a 用地用海 code, optionally followed by its name ("0701 城镇住宅用地", "0701城镇住宅用地"; not "05H1")
_LAND_USE_VALUE_RE = re.compile(r"^(\d{2}(?:\d{2}){0,2})(?:\s*([^\sA-Za-z0-9].*))?$")
_DLBM_RE = re.compile(r"^[0-9]{2}(?:[0-9A-Z]{2})?$")


# --------------------------------------------------------------------------------------------------
# What reading a value gives
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UseReading:
    """A file's value read as a 用地用海 class."""

    code: str
    """The 用地用海 code the check applies its rules to."""
    read_as: ReadAs
    """``code`` (a 用地用海 code), ``name`` (a 用地用海 class name or a listed other name), ``crosswalk`` (a 三调
    code or name, through ``land_use_crosswalk.yaml``)."""
    survey_code: str | None = None
    """The 三调 DLBM read (``crosswalk`` only)."""
    verify: bool = False
    """The crosswalk entry is marked ``verify``."""
    note: str | None = None


@dataclass(frozen=True)
class UseProblem:
    """Why a file's value is not a 用地用海 class."""

    reason: Reason
    """``unknown_code``, ``unknown_name``, ``ambiguous`` (several classes, not guessed), ``too_general`` (建设用地 …),
    ``name_mismatch`` (a code and a name that disagree)."""
    candidates: tuple[str, ...] = ()
    """The 用地用海 codes an ambiguous value may mean."""
    hint: Classification | None = None
    """The value reads in the other classification (a 三调 code given as 用地用海, or the reverse)."""
    note: str | None = None


@dataclass(frozen=True)
class FieldInfo:
    """A field name with its labels (and, for a use field, the classification of its values)."""

    name: str
    label_zh: str
    label_en: str
    classification: Classification | None = None


def code_text(value: Any) -> str:
    """A file value as text: a whole number from a numeric DBF field keeps its even digit count (701 → 0701),
    full-width characters become ASCII (０７０１ → 0701), blanks are stripped."""
    if isinstance(value, bool):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    if isinstance(value, int | float) and float(value).is_integer():
        digits = str(int(value))
        return digits.zfill(len(digits) + len(digits) % 2)
    return unicodedata.normalize("NFKC", str(value)).strip()


# --------------------------------------------------------------------------------------------------
# The files
# --------------------------------------------------------------------------------------------------


class _LabelField(FrozenModel):
    name: NonEmptyStr
    label_zh: NonEmptyStr
    label_en: NonEmptyStr


class UseField(_LabelField):
    """A usual name of the use field, with the classification its values are read in."""

    classification: Classification


class _FieldsFile(FrozenModel):
    use_fields: list[Any] = PydanticField(min_length=1)
    label_fields: list[Any] = PydanticField(min_length=1)
    other_fields: list[Any] = PydanticField(default_factory=list)


def _load_fields(path: Path) -> tuple[tuple[UseField, ...], tuple[FieldInfo, ...], tuple[FieldInfo, ...], bytes]:
    raw, data = read_yaml(path)
    problems = Problems(path)
    top = validate_entry(_FieldsFile, raw, problems, "(top level)")
    problems.raise_if_any()
    assert top is not None
    seen: dict[str, str] = {}
    lists: dict[str, list[Any]] = {"use_fields": [], "label_fields": [], "other_fields": []}
    models: tuple[tuple[str, type[_LabelField]], ...] = (
        ("use_fields", UseField),
        ("label_fields", _LabelField),
        ("other_fields", _LabelField),
    )
    for key, model in models:
        for index, raw_entry in enumerate(getattr(top, key)):
            entry = entry_label(key.removesuffix("s").replace("_", " "), raw_entry, index, key="name")
            parsed = validate_entry(model, raw_entry, problems, entry)
            if parsed is None:
                continue
            folded = parsed.name.strip().upper()
            if folded in seen:
                problems.add(entry, f"field {parsed.name!r} is already listed in {seen[folded]} (names ignore case)")
                continue
            seen[folded] = key
            lists[key].append(parsed)
    problems.raise_if_any()
    uses = tuple(lists["use_fields"])
    labels = tuple(FieldInfo(f.name, f.label_zh, f.label_en) for f in lists["label_fields"])
    others = tuple(FieldInfo(f.name, f.label_zh, f.label_en) for f in lists["other_fields"])
    return uses, labels, others, data


# --------------------------------------------------------------------------------------------------
# The loaded configuration
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParcelFields:
    """The usual field names and the crosswalk, validated against ``catalog``."""

    use_fields: tuple[UseField, ...]
    label_fields: tuple[FieldInfo, ...]
    other_fields: tuple[FieldInfo, ...]
    catalog: Catalog
    fingerprint: str
    """SHA-256 over both files: which crosswalk a check's use was read with."""
    _survey: Mapping[str, SurveyEntry]
    _names: Mapping[str, NameEntry]
    _general: Mapping[str, GeneralEntry]
    _class_names: Mapping[str, tuple[str, ...]]
    """用地用海 class name → its codes (one, unless the classification repeats a name)."""
    _survey_names: Mapping[str, tuple[str, ...]]
    """三调 DLMC → its DLBM codes."""

    def use_field(self, name: str) -> UseField | None:
        """The usual use field called ``name`` (ignoring case), or None."""
        folded = name.strip().upper()
        return next((f for f in self.use_fields if f.name.upper() == folded), None)

    def describe(self, name: str) -> FieldInfo:
        """A field's labels: from the usual names when listed, else the name itself."""
        folded = name.strip().upper()
        use = self.use_field(name)
        if use is not None:
            return FieldInfo(name, use.label_zh, use.label_en, use.classification)
        for known in (*self.label_fields, *self.other_fields):
            if known.name.upper() == folded:
                return FieldInfo(name, known.label_zh, known.label_en)
        return FieldInfo(name, name, name)

    def read_use(self, value: Any, classification: Classification) -> UseReading | UseProblem | None:
        """``value`` (a file's cell) as a 用地用海 class; None when it is empty."""
        text = code_text(value) if value is not None else ""
        if not text:
            return None
        if text in self._general:
            return UseProblem("too_general", note=self._general[text].note)
        if classification == "land_survey":
            return self._read_survey(text)
        return self._read_land_use(text)

    def _read_land_use(self, text: str, hint: bool = True) -> UseReading | UseProblem:
        catalog = self.catalog
        match = _LAND_USE_VALUE_RE.match(text)
        if match is not None:
            code, name = match.group(1), match.group(2)
            try:
                cls = catalog.land_use(code)
            except UnknownLandUseError:
                return UseProblem("unknown_code", hint=self._reads_as_survey(text) if hint else None)
            if name and name != cls.name_zh and self._named(name) != code:
                return UseProblem("name_mismatch", candidates=(code,), note=cls.name_zh)
            return UseReading(code, "code")
        found = self._named(text)
        if isinstance(found, str):
            entry = self._names.get(text)
            return UseReading(found, "name", verify=bool(entry and entry.verify), note=entry.note if entry else None)
        if isinstance(found, tuple):
            entry = self._names[text]
            return UseProblem("ambiguous", candidates=found, note=entry.note)
        reason: Reason = "unknown_code" if text.isdigit() or _DLBM_RE.match(text.upper()) else "unknown_name"
        return UseProblem(reason, hint=self._reads_as_survey(text) if hint else None)

    def _named(self, name: str) -> str | tuple[str, ...] | None:
        """The 用地用海 code a class name or a listed other name means (a tuple when ambiguous), or None."""
        codes = self._class_names.get(name, ())
        if len(codes) == 1:
            return codes[0]
        if len(codes) > 1:
            return codes
        entry = self._names.get(name)
        if entry is None:
            return None
        return entry.land_use if entry.land_use else entry.ambiguous

    def _read_survey(self, text: str, hint: bool = True) -> UseReading | UseProblem:
        key = text.upper()
        if _DLBM_RE.match(key) is None:  # a name: the 三调 DLMC
            dlbms = self._survey_names.get(text, ())
            if len(dlbms) != 1:
                return UseProblem("unknown_name", hint=self._reads_as_land_use(text) if hint else None)
            key = dlbms[0]
        entry = self._survey.get(key)
        if entry is None:
            return UseProblem("unknown_code", hint=self._reads_as_land_use(text) if hint else None)
        if entry.ambiguous:
            return UseProblem("ambiguous", candidates=entry.ambiguous, note=entry.note)
        assert entry.land_use is not None  # validated: exactly one of land_use / ambiguous
        return UseReading(entry.land_use, "crosswalk", survey_code=key, verify=entry.verify, note=entry.note)

    def _reads_as_survey(self, text: str) -> Classification | None:
        """``land_survey`` when ``text`` is a 三调 value (so a message can say which classification to choose)."""
        return "land_survey" if _known(self._read_survey(text, hint=False)) else None

    def _reads_as_land_use(self, text: str) -> Classification | None:
        return "land_use" if _known(self._read_land_use(text, hint=False)) else None


def _known(result: UseReading | UseProblem) -> bool:
    """Whether a value is one of the classification's own (read, or known but ambiguous / too general)."""
    return isinstance(result, UseReading) or result.reason not in ("unknown_code", "unknown_name")


def _build(directory: Path, catalog: Catalog) -> ParcelFields:
    uses, labels, others, fields_bytes = _load_fields(directory / PARCEL_FIELDS_FILE)
    survey, names, general, crosswalk_bytes = load_crosswalk(directory / CROSSWALK_FILE, catalog)
    class_names: dict[str, tuple[str, ...]] = {}
    for cls in catalog.land_uses:
        class_names[cls.name_zh] = (*class_names.get(cls.name_zh, ()), cls.code)
    survey_names: dict[str, tuple[str, ...]] = {}
    for survey_class in catalog.land_survey_classes:
        survey_names[survey_class.dlmc] = (*survey_names.get(survey_class.dlmc, ()), survey_class.dlbm)
    digest = hashlib.sha256()
    for name, data in ((PARCEL_FIELDS_FILE, fields_bytes), (CROSSWALK_FILE, crosswalk_bytes)):
        digest.update(name.encode() + b"\0" + data + b"\0")
    return ParcelFields(
        use_fields=uses,
        label_fields=labels,
        other_fields=others,
        catalog=catalog,
        fingerprint=digest.hexdigest(),
        _survey=MappingProxyType(survey),
        _names=MappingProxyType(names),
        _general=MappingProxyType(general),
        _class_names=MappingProxyType(class_names),
        _survey_names=MappingProxyType(survey_names),
    )


@functools.lru_cache(maxsize=8)
def _load_cached(directory: Path, catalog: Catalog) -> ParcelFields:
    return _build(directory, catalog)


def load_parcel_fields(catalog: Catalog, directory: Path | None = None) -> ParcelFields:
    """The usual parcel fields and the crosswalk from ``directory`` (default: the catalogue's folder), validated
    against ``catalog``; cached per folder and catalogue.  Raises :class:`CatalogError` naming file, entry and
    problem when a file is malformed."""
    folder = (directory if directory is not None else catalog.directory).expanduser().resolve()
    if not folder.is_dir():
        raise CatalogError(f"{folder}: (directory): layers folder does not exist", file=str(folder))
    return _load_cached(folder, catalog)


def clear_parcel_fields_cache() -> None:
    """Forget every cached configuration (e.g. after the files changed)."""
    _load_cached.cache_clear()
