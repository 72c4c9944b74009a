"""Each parcel's proposed use and name from the file it came in: the one resolver of every upload path.

The web upload, ``POST /api/v1/checks/upload`` and ``/checks/inspect``, the batch job and ``gis-platform check
FILE`` all go through here:

1. :func:`settle_fields` decides, once per file, which field holds the parcels' use and which their name: the
   field the user named, ``none`` (no use from the file: every parcel gets the given use), or — by default — the
   first of the usual names in ``layers/parcel_fields.yaml`` that the file has and fills for some parcel; and in
   which classification the use values are read (用地用海, or 三调 through ``layers/land_use_crosswalk.yaml``).
2. :func:`parcel_use` reads one parcel's value: a 用地用海 code, the given use when the parcel's value is empty, no
   use when there is neither (the check then says 需补充用途), or a :class:`~gis_platform.parcel_fields.UseProblem`
   — never a silent fallback.  :func:`resolve_uses` refuses a file with any such parcel
   (:class:`~gis_platform.errors.LandUseValueError`, naming each parcel and value) before anything is checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

from ..errors import FieldNotFoundError, LandUseValueError, ParcelError, UnknownLandUseError
from ..parcel_fields import (
    CLASSIFICATION_NAMES,
    CLASSIFICATIONS,
    Classification,
    ParcelFields,
    UseProblem,
    UseReading,
    code_text,
)
from .parcel import Parcel

AUTO: Final[str] = "auto"
"""A field choice: detect the field from the usual names (the default)."""
NONE: Final[str] = "none"
"""A field choice: read nothing from the file (every parcel gets the given use / no name)."""
MAX_SAMPLES: Final[int] = 5


@dataclass(frozen=True)
class FieldChoice:
    """What the user asked for (form, API parameters, CLI options); empty strings count as not given."""

    use_field: str | None = None
    """A field name, ``auto`` (or None: detect) or ``none`` (not from the file)."""
    classification: str | None = None
    """``land_use`` or ``land_survey``; None: as the usual names list the field (用地用海 for other fields)."""
    label_field: str | None = None
    """A field name, ``auto`` (or None: detect) or ``none``."""
    default_use: str | None = None
    """The use given with the upload, for parcels whose file value is empty (and for all with ``none``)."""


@dataclass(frozen=True)
class SettledFields:
    """The fields a file's parcels are read with (actual column names of the file)."""

    use_field: str | None
    classification: Classification | None
    label_field: str | None
    default_use: str | None
    detected_use_field: str | None = None
    detected_label_field: str | None = None

    def to_params(self) -> dict[str, Any]:
        """JSON-ready (kept with a batch job, so every parcel of the job is read alike)."""
        return asdict(self)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SettledFields:
        return cls(**{k: params.get(k) for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class ParcelUse:
    """One parcel's proposed use and where it came from."""

    code: str | None
    """The 用地用海 code to check with; None when there is no use (or a problem)."""
    origin: Literal["file", "given"] | None
    value: str | None = None
    """The parcel's value in the use field, as text (None when empty or no field)."""
    reading: UseReading | None = None
    problem: UseProblem | None = None


def _column(columns: Sequence[str], name: str) -> str | None:
    """The file's own spelling of ``name`` (exact first, then ignoring case and blanks)."""
    if name in columns:
        return name
    folded = name.strip().upper()
    return next((c for c in columns if str(c).strip().upper() == folded), None)


def _filled(records: Sequence[Mapping[str, Any]], column: str) -> bool:
    return any(code_text(r.get(column)) for r in records if r.get(column) is not None)


def _chosen(name: str | None, detected: str | None, columns: Sequence[str], what: str) -> str | None:
    wanted = (name or "").strip()
    if wanted.lower() in ("", AUTO):
        return detected
    if wanted.lower() == NONE:
        return None
    found = _column(columns, wanted)
    if found is None:
        listed = "、".join(str(c) for c in columns) or "（无）"
        raise FieldNotFoundError(
            f"文件中没有{what}字段“{wanted}”，文件的字段有：{listed} / the file has no field {wanted!r} for the {what}"
            f" ({'use' if what == '用途' else 'name'}); its fields: {', '.join(map(str, columns)) or '(none)'}",
            field=wanted,
            fields=[str(c) for c in columns],
        )
    return found


def settle_fields(
    columns: Sequence[str], records: Sequence[Mapping[str, Any]], choice: FieldChoice, fields: ParcelFields
) -> SettledFields:
    """Decide once per file which fields give the parcels' use and name (see the module docstring).

    Raises :class:`UnknownLandUseError` for a given use that is not a 用地用海 code, :class:`FieldNotFoundError`
    for a named field the file lacks, :class:`ParcelError` for an unknown classification.
    """
    default = (choice.default_use or "").strip() or None
    if default is not None:
        default = fields.catalog.land_use(default).code
    if choice.classification and choice.classification not in CLASSIFICATIONS:
        raise ParcelError(
            f"未知的用途分类“{choice.classification}”，应为 land_use（用地用海）或 land_survey（三调） / unknown "
            f"classification {choice.classification!r}: use land_use or land_survey",
            classification=choice.classification,
        )
    detected_use = next(
        (col for f in fields.use_fields if (col := _column(columns, f.name)) and _filled(records, col)), None
    )
    detected_label = next(
        (col for f in fields.label_fields if (col := _column(columns, f.name)) and _filled(records, col)), None
    )
    use_field = _chosen(choice.use_field, detected_use, columns, "用途")
    classification: Classification | None = None
    if use_field is not None:
        listed = fields.use_field(use_field)
        given = choice.classification if choice.classification in CLASSIFICATIONS else None
        classification = given or (listed.classification if listed else "land_use")  # type: ignore[assignment]
    return SettledFields(
        use_field=use_field,
        classification=classification,
        label_field=_chosen(choice.label_field, detected_label, columns, "名称"),
        default_use=default,
        detected_use_field=detected_use,
        detected_label_field=detected_label,
    )


def parcel_use(properties: Mapping[str, Any], settled: SettledFields, fields: ParcelFields) -> ParcelUse:
    """One parcel's use: from its file value, else the given use, else none."""
    if settled.use_field is not None and settled.classification is not None:
        raw = properties.get(settled.use_field)
        result = fields.read_use(raw, settled.classification)
        if result is not None:
            value = code_text(raw)
            if isinstance(result, UseProblem):
                return ParcelUse(None, None, value, problem=result)
            return ParcelUse(result.code, "file", value, reading=result)
    if settled.default_use is not None:
        return ParcelUse(settled.default_use, "given")
    return ParcelUse(None, None)


def parcel_label(properties: Mapping[str, Any], settled: SettledFields) -> str | None:
    """The parcel's name from the settled name field, or None."""
    if settled.label_field is None:
        return None
    text = code_text(properties.get(settled.label_field)) if properties.get(settled.label_field) is not None else ""
    return text or None


def usual_label(properties: Mapping[str, Any], fields: ParcelFields) -> str | None:
    """A single parcel's name from the first usual name field it fills (a GeoJSON Feature sent to the API)."""
    settled = settle_fields(list(properties), [properties], FieldChoice(NONE, label_field=AUTO), fields)
    return parcel_label(properties, settled)


def use_source(use: ParcelUse, settled: SettledFields, fields: ParcelFields) -> dict[str, Any] | None:
    """Where a checked parcel's use came from, for the check document (field, classification, value, how read)."""
    if use.code is None:
        return None
    if use.origin != "file" or use.reading is None or settled.use_field is None:
        return {"from": "given"}
    info = fields.describe(settled.use_field)
    classification = settled.classification or "land_use"
    zh, en = CLASSIFICATION_NAMES[classification]
    return {
        "from": "file",
        "field": settled.use_field,
        "field_label_zh": info.label_zh,
        "field_label_en": info.label_en,
        "classification": classification,
        "classification_zh": zh,
        "classification_en": en,
        "value": use.value,
        "read_as": use.reading.read_as,
        "survey_code": use.reading.survey_code,
        "verify": use.reading.verify,
        "note": use.reading.note,
        "crosswalk_fingerprint": fields.fingerprint,
    }


# --------------------------------------------------------------------------------------------------
# Problems, in words
# --------------------------------------------------------------------------------------------------


def _class_names(codes: Sequence[str], fields: ParcelFields) -> tuple[str, str]:
    zh, en = [], []
    for code in codes:
        try:
            cls = fields.catalog.land_use(code)
        except UnknownLandUseError:
            zh.append(code)
            en.append(code)
            continue
        zh.append(f"{code} {cls.name_zh}")
        en.append(f"{code} {cls.name_en}")
    return "、".join(zh), "; ".join(en)


def problem_entry(
    parcel_no: int, label: str | None, use: ParcelUse, settled: SettledFields, fields: ParcelFields
) -> dict[str, Any]:
    """A parcel's problem as data (the web shows it in its own words) with a message in Chinese and English."""
    assert use.problem is not None and settled.use_field is not None
    problem = use.problem
    classification = settled.classification or "land_use"
    info = fields.describe(settled.use_field)
    name = f"地块“{label}”" if label else f"第 {parcel_no} 个地块"
    name_en = f"parcel {label!r}" if label else f"parcel {parcel_no}"
    cls_zh, cls_en = CLASSIFICATION_NAMES[classification]
    head = f"{name}的{info.label_zh}（{settled.use_field}）“{use.value}”"
    head_en = f"{name_en}: {info.label_en} ({settled.use_field}) {use.value!r}"
    candidates_zh, candidates_en = _class_names(problem.candidates, fields)
    if problem.reason == "ambiguous":
        what = f"对应多个用地用海分类（{candidates_zh}），不作猜测"
        what_en = f"may be several land-use classes ({candidates_en}) and is not guessed"
    elif problem.reason == "too_general":
        what = "只是大类，不能对应到具体的用地用海分类"
        what_en = "is too general to be a land-use class"
    elif problem.reason == "name_mismatch":
        what = f"中的代码与名称不一致（{candidates_zh}）"
        what_en = f"gives a code and a name that disagree ({candidates_en})"
    else:
        kind = "代码" if problem.reason == "unknown_code" else "名称"
        what = f"不是{cls_zh}{kind}"
        what_en = f"is not a {cls_en} {'code' if problem.reason == 'unknown_code' else 'name'}"
        if problem.hint:
            other_zh, other_en = CLASSIFICATION_NAMES[problem.hint]
            what += f"（它是{other_zh}，请改按{other_zh}读取：land_use_classification={problem.hint}）"
            what_en += f" (it is a {other_en} value: read the field as land_use_classification={problem.hint})"
    action = (
        "请在文件中填写用地用海代码或名称（如 0701、城镇住宅用地），或改用其他字段，"
        "或以 land_use_field=none 对全部地块使用统一填写的用途"
    )
    action_en = "give a land-use code or name in the file (e.g. 0701), pick another field, or send land_use_field=none"
    return {
        "parcel": parcel_no,
        "label": label,
        "field": settled.use_field,
        "value": use.value,
        "classification": classification,
        "reason": problem.reason,
        "candidates": list(problem.candidates),
        "hint": problem.hint,
        "message_zh": f"{head}{what}。{action}。",
        "message_en": f"{head_en} {what_en}; {action_en}.",
    }


def resolve_uses(parcels: Sequence[Parcel], settled: SettledFields, fields: ParcelFields) -> list[ParcelUse]:
    """Every parcel's use (and label, set on the parcel); one :class:`LandUseValueError` listing every parcel
    whose value cannot be read, before any of them is checked."""
    uses: list[ParcelUse] = []
    problems: list[dict[str, Any]] = []
    for parcel in parcels:
        parcel.label = parcel_label(parcel.properties, settled)
        use = parcel_use(parcel.properties, settled, fields)
        if use.problem is not None:
            problems.append(problem_entry(parcel.index + 1, parcel.label, use, settled, fields))
        uses.append(use)
    if problems:
        first = problems[0]
        more = len(problems) - 1
        tail_zh = f"（另有 {more} 个地块同样无法识别）" if more else ""
        tail_en = f" (and {more} more parcel{'s' if more > 1 else ''} likewise)" if more else ""
        raise LandUseValueError(
            f"{first['message_zh']}{tail_zh} / {first['message_en']}{tail_en}", problems=problems
        )
    return uses
