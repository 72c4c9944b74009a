"""Compliance rules (合规性审查规则) as data, and a pure evaluator: facts in, verdicts out.

The rules live in ``layers/rules.yaml`` (see the header of that file for the condition vocabulary and the
message placeholders).  :func:`load_rules` reads and validates them against the catalogue — every rule's
layer role must name a catalogue layer, every land-use code must be a 用地用海 code, every placeholder must be
one the rule can fill — and raises :class:`~gis_platform.errors.CatalogError` naming the file, the rule and
the problem (every problem of the file, one per line).

:func:`evaluate` is pure: no database, no web framework.  The check engine measures the parcel against each
checked layer and hands over :class:`CheckFacts`; the evaluator returns an :class:`Evaluation` whose verdict
is the worst level of its findings (禁止 > 需补充用途 > 有条件 > 通过; 通过 when nothing fired).

Decisions
---------
* An inside rule fires when its area is strictly greater than ``min_area_m2`` (default 0): a parcel that only
  shares an edge with a red line overlaps 0 m² and gets no finding.
* A rule that filters on the proposed land use (``land_use``, ``land_use_codes``, ``plan_use_mismatch``) never
  fires when no use was proposed; ``land_use_given: false`` rules say what that leaves open.
* No proposed use is its own outcome, 需补充用途 (use required; reasoning in ``layers/rules.yaml``): a check without
  a use is never 通过 or 有条件, only 禁止 when a rule that holds whatever the use fires.  The rules that speak
  about a missing use (``land_use_given: false``) carry that level and no other, so a finding's badge says what
  its text says.
* 微小压盖 findings are never dropped: they keep the level their rule gives, carry ``minor=True`` and the note
  configured in ``minor_area`` is appended to both messages.  The engine reports, the reviewer decides.
* Findings are ordered worst level first, then in rule-file order.
"""

from __future__ import annotations

import functools
import hashlib
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import Field as PydanticField
from pydantic import StrictBool

from gis_platform.catalog import ROLES, SHAREABLE_ROLE, Catalog, Layer
from gis_platform.classifications import LandUseClass
from gis_platform.data_files import CodeStr, FrozenModel, NonEmptyStr, Problems, entry_label, read_yaml, validate_entry
from gis_platform.errors import ConfigurationError, UnknownLandUseError, UnknownLayerError
from gis_platform.units import area_figures

__all__ = [
    "CONDITIONAL",
    "LEVELS",
    "LEVEL_EN",
    "PASS",
    "PROHIBITED",
    "RULES_FILE",
    "USE_REQUIRED",
    "CategoryFilter",
    "CheckFacts",
    "Condition",
    "Evaluation",
    "Finding",
    "LandUseFilter",
    "LayerFacts",
    "MinorArea",
    "Rule",
    "RuleSet",
    "clear_rules_cache",
    "evaluate",
    "load_rules",
    "rules_fingerprint",
    "worst_level",
]

RULES_FILE: Final[str] = "rules.yaml"

PROHIBITED: Final[str] = "禁止"
USE_REQUIRED: Final[str] = "需补充用途"
CONDITIONAL: Final[str] = "有条件"
PASS: Final[str] = "通过"
#: Levels from worst to best (every verdict a check may store; migration 0009 keeps the table to these).
LEVELS: Final[tuple[str, ...]] = (PROHIBITED, USE_REQUIRED, CONDITIONAL, PASS)
#: English names of the levels (for the API and English reports).
LEVEL_EN: Final[Mapping[str, str]] = {
    PROHIBITED: "prohibited",
    USE_REQUIRED: "use_required",
    CONDITIONAL: "conditional",
    PASS: "pass",
}
_SEVERITY: Final[Mapping[str, int]] = {PROHIBITED: 3, USE_REQUIRED: 2, CONDITIONAL: 1, PASS: 0}

Level = Literal["禁止", "需补充用途", "有条件", "通过"]
Relation = Literal["inside", "outside"]

_RULE_ID_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")

#: Placeholders every message may use.
_BASE_PLACEHOLDERS: Final[frozenset[str]] = frozenset(
    {"area_m2", "area_ha", "area_mu", "layer_name", "layer_name_en", "layer_code", "feature_count"}
)
#: Placeholders for rules that require a proposed land use.
_LAND_USE_PLACEHOLDERS: Final[frozenset[str]] = frozenset({"land_use_code", "land_use_name", "land_use_name_en"})
_PLAN_PLACEHOLDERS: Final[frozenset[str]] = frozenset({"plan_uses", "plan_uses_en"})
_CATEGORY_PLACEHOLDERS: Final[frozenset[str]] = frozenset({"categories"})


# --------------------------------------------------------------------------------------------------
# Facts (what the check engine measured)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerFacts:
    """What the check engine measured for one layer: areas are ellipsoidal m², unrounded."""

    layer_code: str
    """The catalogue layer code, e.g. ``YJJBNT``."""
    role: str
    """The layer's catalogue role."""
    overlap_m2: float
    """Area of the UNION of the parcel's overlaps with this layer's features (unrounded)."""
    outside_m2: float
    """Parcel area not covered by this layer (``parcel_area_m2 - overlap_m2``, ≥ 0)."""
    feature_count: int
    """Features with a positive-area overlap."""
    minor: bool
    """``overlap_m2 > 0`` but below the configured 微小压盖 threshold."""
    plan_use_m2: Mapping[str, float] = field(default_factory=dict)
    """Township plan layer: overlap area by the plan's 用地用海 code (YDYHFLDM) → m²; empty for others."""
    categories_m2: Mapping[str, float] = field(default_factory=dict)
    """Hazard layers: overlap area by a category value (e.g. YFCD 高易发/中易发/低易发) → m²."""


@dataclass(frozen=True)
class CheckFacts:
    """Everything the evaluator needs about one parcel."""

    parcel_area_m2: float
    land_use_code: str | None
    """The proposed 用地用海 code (None when not given)."""
    layers: Mapping[str, LayerFacts]
    """By layer code; only the layers that were checked."""


# --------------------------------------------------------------------------------------------------
# Rules (validated from layers/rules.yaml)
# --------------------------------------------------------------------------------------------------


class LandUseFilter(FrozenModel):
    """Flag filter over the proposed 用地用海 class: every given flag must have the given value."""

    construction: StrictBool | None = None
    agricultural: StrictBool | None = None
    linear_infrastructure: StrictBool | None = None
    urban_construction: StrictBool | None = None
    sea: StrictBool | None = None

    @property
    def flags(self) -> dict[str, bool]:
        """The flags this filter sets."""
        return {name: value for name, value in self.model_dump().items() if value is not None}

    def matches(self, land_use: LandUseClass) -> bool:
        """Whether ``land_use`` has every flag of the filter."""
        return all(getattr(land_use, name) is value for name, value in self.flags.items())


class CategoryFilter(FrozenModel):
    """Category filter for hazard-like layers: the overlap with features whose ``field`` is one of ``values``."""

    field: NonEmptyStr
    values: tuple[NonEmptyStr, ...] = PydanticField(min_length=1)


class Condition(FrozenModel):
    """When a rule fires (the closed vocabulary of ``layers/rules.yaml``; all given keys must hold)."""

    relation: Relation
    min_area_m2: Annotated[float, PydanticField(ge=0.0, allow_inf_nan=False)] = 0.0
    land_use: LandUseFilter | None = None
    land_use_codes: tuple[CodeStr, ...] | None = PydanticField(default=None, min_length=1)
    land_use_given: StrictBool | None = None
    plan_use_mismatch: Literal[True] | None = None
    categories: CategoryFilter | None = None

    @property
    def needs_land_use(self) -> bool:
        """Whether the rule can only fire when a land use was proposed."""
        return (
            self.land_use is not None
            or self.land_use_codes is not None
            or self.plan_use_mismatch is not None
            or self.land_use_given is True
        )


class Rule(FrozenModel):
    """One compliance rule."""

    id: NonEmptyStr
    level: Level
    layer_role: NonEmptyStr
    condition: Condition
    message_zh: NonEmptyStr
    message_en: NonEmptyStr
    citation: NonEmptyStr

    @property
    def level_en(self) -> str:
        """The level in English (prohibited / conditional / pass)."""
        return LEVEL_EN[self.level]


class MinorArea(FrozenModel):
    """The 微小压盖 configuration: threshold and the notes appended to a minor finding's messages."""

    threshold_m2: Annotated[float, PydanticField(ge=0.0, allow_inf_nan=False)]
    inside_zh: NonEmptyStr
    inside_en: NonEmptyStr
    outside_zh: NonEmptyStr
    outside_en: NonEmptyStr


class _RulesFile(FrozenModel):
    source: str | None = None
    minor_area: MinorArea
    rules: list[Any] = PydanticField(min_length=1)


@dataclass(frozen=True)
class RuleSet:
    """The validated rules, in file order, with the 微小压盖 configuration."""

    rules: tuple[Rule, ...]
    minor_area: MinorArea
    path: Path
    """The file the rules were read from."""
    fingerprint: str
    """SHA-256 of the rules file: which rules version a check result was computed with."""
    catalog_fingerprint: str
    """Fingerprint of the catalogue the rules were validated against."""
    source: str | None = None

    @property
    def minor_area_m2(self) -> float:
        """The 微小压盖 threshold (m²) the check engine should use to set :attr:`LayerFacts.minor`."""
        return self.minor_area.threshold_m2

    @property
    def ids(self) -> tuple[str, ...]:
        """Rule ids in file order."""
        return tuple(rule.id for rule in self.rules)

    def rule(self, rule_id: str) -> Rule:
        """The rule with ``rule_id``; :class:`KeyError` if none."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(f"no rule {rule_id!r} (rules: {', '.join(self.ids)})")

    @property
    def outside_roles(self) -> frozenset[str]:
        """Layer roles with a rule about the part of the parcel outside the layer (the engine measures it)."""
        return frozenset(rule.layer_role for rule in self.rules if rule.condition.relation == "outside")

    def category_fields(self, catalog: Catalog) -> dict[str, str]:
        """Layer code → the attribute whose values :attr:`LayerFacts.categories_m2` must be keyed by."""
        out: dict[str, str] = {}
        for rule in self.rules:
            if rule.condition.categories is not None:
                out[catalog.layer_by_role(rule.layer_role).code] = rule.condition.categories.field
        return out


# --------------------------------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------------------------------


def _placeholder_problems(text: str, allowed: frozenset[str], key: str) -> list[str]:
    """Problems with the ``{placeholders}`` of one message."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        return [f"{key}: bad placeholder syntax ({exc}); write {{{{ }}}} for a literal brace"]
    problems: list[str] = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in allowed:
            problems.append(
                f"{key}: unknown placeholder {{{name}}} for this rule (allowed: {', '.join(sorted(allowed))})"
            )
        elif spec or conversion:
            problems.append(f"{key}: placeholder {{{name}}} takes no format spec or conversion (values are text)")
    return problems


def _rule_problems(rule: Rule, catalog: Catalog) -> list[str]:
    """Problems of one schema-valid rule against the catalogue and the condition vocabulary."""
    problems: list[str] = []
    cond = rule.condition
    if not _RULE_ID_RE.match(rule.id):
        problems.append(f"bad rule id {rule.id!r}: lower-case letters, digits and '_', parts joined by '.'")
    layer: Layer | None = None
    unique_roles = [r for r in ROLES if r != SHAREABLE_ROLE]
    if rule.layer_role not in unique_roles:
        problems.append(f"unknown layer_role {rule.layer_role!r} (known roles: {', '.join(unique_roles)})")
    else:
        try:
            layer = catalog.layer_by_role(rule.layer_role)
        except UnknownLayerError:
            problems.append(f"layer_role {rule.layer_role!r}: no layer in the catalogue has this role")
    if cond.land_use is not None and not cond.land_use.flags:
        problems.append("condition.land_use: empty filter (set at least one flag, or leave land_use out)")
    for code in cond.land_use_codes or ():
        try:
            catalog.land_use(code)
        except UnknownLandUseError:
            problems.append(f"condition.land_use_codes: unknown 用地用海 code {code!r} (not in the catalogue)")
    if cond.land_use_given is False and cond.needs_land_use:
        problems.append(
            "condition: land_use_given: false contradicts land_use / land_use_codes / plan_use_mismatch "
            "(those need a proposed land use)"
        )
    if cond.land_use_given is False and rule.level != USE_REQUIRED:
        problems.append(
            f"level {rule.level}: a rule about a missing land use (land_use_given: false) says the check cannot "
            f"decide; give it level {USE_REQUIRED} so its badge agrees with its text"
        )
    if rule.level == USE_REQUIRED and cond.land_use_given is not False:
        problems.append(f"level {USE_REQUIRED} is only for rules with land_use_given: false")
    if cond.plan_use_mismatch is not None:
        if cond.relation != "inside":
            problems.append("condition.plan_use_mismatch needs relation: inside")
        if rule.layer_role != "township_plan":
            problems.append(
                f"condition.plan_use_mismatch applies to layer_role 'township_plan' only, not {rule.layer_role!r}"
            )
        if cond.categories is not None:
            problems.append("condition: plan_use_mismatch and categories cannot be combined (which area?)")
    if cond.categories is not None:
        if cond.relation != "inside":
            problems.append("condition.categories needs relation: inside")
        if layer is not None and layer.get_field(cond.categories.field) is None:
            problems.append(
                f"condition.categories.field {cond.categories.field!r} is not a field of layer {layer.code!r} "
                f"(fields: {', '.join(layer.field_names)})"
            )
    allowed = set(_BASE_PLACEHOLDERS)
    if cond.needs_land_use:
        allowed |= _LAND_USE_PLACEHOLDERS
    if cond.plan_use_mismatch or (rule.layer_role == "township_plan" and cond.land_use_given is False):
        allowed |= _PLAN_PLACEHOLDERS
    if cond.categories is not None:
        allowed |= _CATEGORY_PLACEHOLDERS
    for key in ("message_zh", "message_en"):
        problems += _placeholder_problems(getattr(rule, key), frozenset(allowed), key)
    return problems


def _canonical_category_field(rule: Rule, catalog: Catalog) -> Rule:
    """The rule with its category field spelled as in the catalogue (``yfcd`` → ``YFCD``)."""
    cats = rule.condition.categories
    if cats is None:
        return rule
    found = catalog.layer_by_role(rule.layer_role).get_field(cats.field)
    if found is None or found.name == cats.field:
        return rule
    condition = rule.condition.model_copy(update={"categories": cats.model_copy(update={"field": found.name})})
    return rule.model_copy(update={"condition": condition})


def _parse(path: Path, catalog: Catalog) -> RuleSet:
    raw, data = read_yaml(path)
    problems = Problems(path)
    top = validate_entry(_RulesFile, raw, problems, "(top level)")
    problems.raise_if_any()
    assert top is not None
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for index, raw_rule in enumerate(top.rules):
        entry = entry_label("rule", raw_rule, index, key="id")
        rule = validate_entry(Rule, raw_rule, problems, entry)
        if rule is None:
            continue
        if rule.id in seen:
            problems.add(entry, f"duplicate rule id {rule.id!r} (already used by rule #{seen[rule.id] + 1})")
            continue
        seen[rule.id] = index
        found = _rule_problems(rule, catalog)
        for problem in found:
            problems.add(entry, problem)
        if not found:
            rules.append(_canonical_category_field(rule, catalog))
    problems.raise_if_any()
    return RuleSet(
        rules=tuple(rules),
        minor_area=top.minor_area,
        path=path,
        fingerprint=rules_fingerprint(data),
        catalog_fingerprint=catalog.fingerprint,
        source=top.source,
    )


def rules_fingerprint(data: bytes) -> str:
    """:attr:`RuleSet.fingerprint` of the bytes of ``rules.yaml`` (check replays key rule snapshots by it)."""
    return hashlib.sha256(data).hexdigest()


@functools.lru_cache(maxsize=8)
def _load_cached(path: Path, catalog: Catalog) -> RuleSet:
    return _parse(path, catalog)


def load_rules(directory: Path, catalog: Catalog) -> RuleSet:
    """Load and validate ``rules.yaml`` from ``directory`` (the ``layers/`` folder) against ``catalog``.

    Cached per resolved directory and catalogue object; call :func:`clear_rules_cache` after editing the file.
    Raises :class:`CatalogError` naming the file, the rule and the problem when the file is malformed.
    """
    return _load_cached((directory.expanduser() / RULES_FILE).resolve(), catalog)


def clear_rules_cache() -> None:
    """Forget every cached rule set (e.g. after ``rules.yaml`` changed)."""
    _load_cached.cache_clear()


# --------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------


def _figures_text(m2: float) -> dict[str, str]:
    """The area figures as message text: m² 2 decimals, 公顷 4, 亩 2 (rounded only here)."""
    fig = area_figures(m2)
    return {"area_m2": f"{fig['m2']:,.2f}", "area_ha": f"{fig['hectare']:,.4f}", "area_mu": f"{fig['mu']:,.2f}"}


@dataclass(frozen=True)
class Finding:
    """One rule that fired for a parcel."""

    rule_id: str
    level: str
    """禁止 / 需补充用途 / 有条件 / 通过."""
    layer_code: str
    area_m2: float
    """The area the rule is about (an overlap, a sub-area of it, or the area outside), unrounded."""
    message_zh: str
    message_en: str
    citation: str
    minor: bool
    """A 微小压盖: positive but below the threshold; reported, never dropped, level kept."""

    @property
    def level_en(self) -> str:
        """The level in English (prohibited / conditional / pass)."""
        return LEVEL_EN[self.level]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; areas rounded for output (m² 2, 公顷 4, 亩 2 decimals)."""
        return {
            "rule_id": self.rule_id,
            "level": self.level,
            "level_en": self.level_en,
            "layer_code": self.layer_code,
            "area": area_figures(self.area_m2),
            "minor": self.minor,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
            "citation": self.citation,
        }


@dataclass(frozen=True)
class Evaluation:
    """The verdict for one parcel and the findings behind it."""

    verdict: str
    """The worst level of all findings; 通过 when nothing fired; at least 需补充用途 when no use was proposed."""
    findings: list[Finding]
    """Worst level first, then rule-file order."""
    rules_fingerprint: str = ""
    """:attr:`RuleSet.fingerprint` of the rules applied."""

    @property
    def verdict_en(self) -> str:
        """The verdict in English (prohibited / conditional / pass)."""
        return LEVEL_EN[self.verdict]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "verdict": self.verdict,
            "verdict_en": self.verdict_en,
            "findings": [finding.to_dict() for finding in self.findings],
            "rules_fingerprint": self.rules_fingerprint,
        }


def worst_level(levels: list[str] | tuple[str, ...]) -> str:
    """The worst of ``levels`` (禁止 > 需补充用途 > 有条件 > 通过); 通过 for none."""
    return max(levels, key=lambda level: _SEVERITY[level], default=PASS)


def _layer_facts(facts: CheckFacts, code: str) -> LayerFacts | None:
    found = facts.layers.get(code)
    if found is not None:
        return found
    return next((lf for lf in facts.layers.values() if lf.layer_code.strip().upper() == code), None)


def _plan_mismatch(
    land_use: LandUseClass | None, plan_use_m2: Mapping[str, float], catalog: Catalog
) -> tuple[float, str, str]:
    """Area of plan uses whose first-level class differs from ``land_use`` (every plan use when there is no
    proposed use), and their lists (zh, en)."""
    mismatched: list[tuple[str, float]] = []
    for raw_code, m2 in plan_use_m2.items():
        code = (raw_code or "").strip()
        if m2 > 0 and (land_use is None or code[:2] != land_use.first_level):
            mismatched.append((code, m2))
    mismatched.sort(key=lambda item: (-item[1], item[0]))
    zh: list[str] = []
    en: list[str] = []
    for code, m2 in mismatched:
        try:
            cls: LandUseClass | None = catalog.land_use(code)
        except UnknownLandUseError:
            cls = None
        shown = code or "（空）"
        area = _figures_text(m2)["area_m2"]
        zh.append(f"{shown} {cls.name_zh if cls else '（分类中无此代码）'} {area} 平方米")
        en.append(f"{code or '(empty)'} {cls.name_en if cls else '(not in the classification)'} {area} m²")
    return sum(m2 for _code, m2 in mismatched), "、".join(zh), "; ".join(en)


def _category_area(categories: CategoryFilter, categories_m2: Mapping[str, float]) -> tuple[float, str]:
    wanted = set(categories.values)
    matched = sorted(
        ((value.strip(), m2) for value, m2 in categories_m2.items() if value.strip() in wanted and m2 > 0),
        key=lambda item: (-item[1], item[0]),
    )
    text = "、".join(f"{value} {_figures_text(m2)['area_m2']} m²" for value, m2 in matched)
    return sum(m2 for _value, m2 in matched), text


def _apply(
    rule: Rule, facts: CheckFacts, land_use: LandUseClass | None, catalog: Catalog, rules: RuleSet
) -> Finding | None:
    """The finding of one rule, or None when it does not fire."""
    cond = rule.condition
    layer = catalog.layer_by_role(rule.layer_role)
    lf = _layer_facts(facts, layer.code)
    if lf is None:
        return None
    if cond.land_use_given is not None and cond.land_use_given != (land_use is not None):
        return None
    if cond.needs_land_use and land_use is None:
        return None
    if land_use is not None:
        if cond.land_use is not None and not cond.land_use.matches(land_use):
            return None
        if cond.land_use_codes is not None and not any(land_use.code.startswith(c) for c in cond.land_use_codes):
            return None
    values: dict[str, Any] = {
        "layer_name": layer.name_zh,
        "layer_name_en": layer.name_en,
        "layer_code": layer.code,
        "feature_count": lf.feature_count,
    }
    if land_use is not None:
        values |= {
            "land_use_code": land_use.code,
            "land_use_name": land_use.name_zh,
            "land_use_name_en": land_use.name_en,
        }
    if cond.relation == "outside":
        area = lf.outside_m2
    elif cond.plan_use_mismatch:
        assert land_use is not None  # needs_land_use
        area, values["plan_uses"], values["plan_uses_en"] = _plan_mismatch(land_use, lf.plan_use_m2, catalog)
    elif rule.layer_role == "township_plan" and land_use is None:
        # no use to compare with: the rule reports every plan use under the parcel
        _all, values["plan_uses"], values["plan_uses_en"] = _plan_mismatch(None, lf.plan_use_m2, catalog)
        area = lf.overlap_m2
    elif cond.categories is not None:
        area, values["categories"] = _category_area(cond.categories, lf.categories_m2)
    else:
        area = lf.overlap_m2
    if not area > cond.min_area_m2:
        return None
    values |= _figures_text(area)
    threshold = rules.minor_area.threshold_m2
    minor = 0 < area < threshold or (cond.relation == "inside" and lf.minor)
    message_zh = rule.message_zh.format(**values)
    message_en = rule.message_en.format(**values)
    if minor:
        inside = cond.relation == "inside"
        message_zh += rules.minor_area.inside_zh if inside else rules.minor_area.outside_zh
        message_en += " " + (rules.minor_area.inside_en if inside else rules.minor_area.outside_en)
    return Finding(
        rule_id=rule.id,
        level=rule.level,
        layer_code=layer.code,
        area_m2=area,
        message_zh=message_zh,
        message_en=message_en,
        citation=rule.citation,
        minor=minor,
    )


def evaluate(rules: RuleSet, facts: CheckFacts, catalog: Catalog) -> Evaluation:
    """Apply ``rules`` to the measured ``facts`` of one parcel.

    Pure: reads nothing but its arguments.  Raises :class:`UnknownLandUseError` for a proposed land use that is
    not a 用地用海 code of ``catalog``, and :class:`ConfigurationError` when ``rules`` were validated against a
    different catalogue.  Without a proposed use the verdict is 需补充用途 unless a finding is worse (禁止).
    """
    if rules.catalog_fingerprint != catalog.fingerprint:
        raise ConfigurationError(
            f"the rules in {rules.path} were validated against another catalogue "
            f"({rules.catalog_fingerprint[:12]}…, not {catalog.fingerprint[:12]}…): load them with this catalogue",
            file=str(rules.path),
        )
    code = facts.land_use_code.strip() if facts.land_use_code is not None else ""
    land_use = catalog.land_use(code) if code else None
    findings = [
        finding for rule in rules.rules if (finding := _apply(rule, facts, land_use, catalog, rules)) is not None
    ]
    findings.sort(key=lambda f: -_SEVERITY[f.level])  # stable: rule-file order within a level
    levels = [f.level for f in findings] + ([USE_REQUIRED] if land_use is None else [])
    return Evaluation(
        verdict=worst_level(levels),
        findings=findings,
        rules_fingerprint=rules.fingerprint,
    )
