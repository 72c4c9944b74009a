"""Tests of the compliance rules (layers/rules.yaml), their loader and the pure evaluator (gis_platform/rules.py).

No database: the facts a check engine would measure are built in code.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from gis_platform.catalog import DEFAULT_LAYERS_DIR, Catalog, load_catalog
from gis_platform.errors import CatalogError, ConfigurationError, UnknownLandUseError
from gis_platform.rules import (
    CONDITIONAL,
    LEVEL_EN,
    PASS,
    PROHIBITED,
    USE_REQUIRED,
    CheckFacts,
    LayerFacts,
    RuleSet,
    clear_rules_cache,
    evaluate,
    load_rules,
    worst_level,
)

EXPECTED_RULES = {
    "farmland.construction": PROHIBITED,
    "farmland.agricultural_facility": CONDITIONAL,
    "farmland.use_not_given": USE_REQUIRED,
    "ecology.construction": PROHIBITED,
    "ecology.linear_infrastructure": CONDITIONAL,
    "ecology.use_not_given": USE_REQUIRED,
    "urban_boundary.urban_construction_outside": PROHIBITED,
    "urban_boundary.use_not_given": USE_REQUIRED,
    "township_plan.use_mismatch": CONDITIONAL,
    "township_plan.use_not_given": USE_REQUIRED,
    "hazard.high_susceptibility": CONDITIONAL,
    "hazard.use_not_given": USE_REQUIRED,
}

PARCEL_M2 = 10_000.0


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def rules(catalog: Catalog) -> RuleSet:
    return load_rules(DEFAULT_LAYERS_DIR, catalog)


# --------------------------------------------------------------------------------------------------
# Building facts
# --------------------------------------------------------------------------------------------------

ROLE_OF = {
    "YJJBNT": "red_line_farmland",
    "STBHHX": "red_line_ecology",
    "CZKFBJ": "urban_boundary",
    "YDYHGHFQ": "township_plan",
    "DZZHYFQ": "hazard_zone",
}
MINOR_M2 = 1.0  # the shipped minor_area.threshold_m2 (asserted in test_shipped_rules_load)


def layer(
    code: str,
    overlap_m2: float,
    *,
    parcel_m2: float = PARCEL_M2,
    plan: Mapping[str, float] | None = None,
    categories: Mapping[str, float] | None = None,
) -> LayerFacts:
    """Facts for one layer as the check engine would report them."""
    return LayerFacts(
        layer_code=code,
        role=ROLE_OF[code],
        overlap_m2=overlap_m2,
        outside_m2=max(parcel_m2 - overlap_m2, 0.0),
        feature_count=1 if overlap_m2 > 0 else 0,
        minor=0 < overlap_m2 < MINOR_M2,
        plan_use_m2=dict(plan or {}),
        categories_m2=dict(categories or {}),
    )


def facts(land_use: str | None, *layers: LayerFacts, parcel_m2: float = PARCEL_M2) -> CheckFacts:
    return CheckFacts(parcel_area_m2=parcel_m2, land_use_code=land_use, layers={lf.layer_code: lf for lf in layers})


# --------------------------------------------------------------------------------------------------
# The shipped rules
# --------------------------------------------------------------------------------------------------


def test_shipped_rules_load(catalog: Catalog, rules: RuleSet) -> None:
    assert {rule.id: rule.level for rule in rules.rules} == EXPECTED_RULES
    assert rules.ids == tuple(EXPECTED_RULES)  # file order
    assert rules.minor_area_m2 == MINOR_M2
    assert len(rules.fingerprint) == 64 and rules.catalog_fingerprint == catalog.fingerprint
    assert rules.path == (DEFAULT_LAYERS_DIR / "rules.yaml").resolve()
    assert rules.category_fields(catalog) == {"DZZHYFQ": "YFCD"}
    for rule in rules.rules:
        assert rule.citation.startswith("《"), rule.id
        assert catalog.layer_by_role(rule.layer_role).check_enabled, rule.id


def test_loader_is_cached(catalog: Catalog, rules: RuleSet) -> None:
    assert load_rules(DEFAULT_LAYERS_DIR, catalog) is rules
    clear_rules_cache()
    fresh = load_rules(DEFAULT_LAYERS_DIR, catalog)
    assert fresh is not rules and fresh.fingerprint == rules.fingerprint
    assert load_rules(DEFAULT_LAYERS_DIR, catalog) is fresh


def test_level_names() -> None:
    assert (PROHIBITED, USE_REQUIRED, CONDITIONAL, PASS) == ("禁止", "需补充用途", "有条件", "通过")
    assert LEVEL_EN == {"禁止": "prohibited", "需补充用途": "use_required", "有条件": "conditional", "通过": "pass"}
    assert worst_level([PASS, CONDITIONAL, PROHIBITED, PASS]) == PROHIBITED
    assert worst_level([PASS, CONDITIONAL, USE_REQUIRED]) == USE_REQUIRED
    assert worst_level([USE_REQUIRED, PROHIBITED]) == PROHIBITED
    assert worst_level([PASS, CONDITIONAL]) == CONDITIONAL
    assert worst_level([]) == PASS


# --------------------------------------------------------------------------------------------------
# The DOMAIN.md rule cases
# --------------------------------------------------------------------------------------------------

CASES: list[tuple[str, CheckFacts, str, dict[str, float]]] = [
    # (case, facts, verdict, {rule id: area})
    ("0701 城镇住宅 on YJJBNT", facts("0701", layer("YJJBNT", 500.0)), PROHIBITED, {"farmland.construction": 500.0}),
    (
        "third-level 070101 on YJJBNT",
        facts("070101", layer("YJJBNT", 20.5)),
        PROHIBITED,
        {"farmland.construction": 20.5},
    ),
    ("0101 耕地 on YJJBNT", facts("0101", layer("YJJBNT", 1000.0)), PASS, {}),
    ("0301 林地 on YJJBNT", facts("0301", layer("YJJBNT", 1000.0)), PASS, {}),
    (
        "0602 设施农业 on YJJBNT",
        facts("0602", layer("YJJBNT", 80.0)),
        CONDITIONAL,
        {"farmland.agricultural_facility": 80.0},
    ),
    ("no use on YJJBNT", facts(None, layer("YJJBNT", 80.0)), USE_REQUIRED, {"farmland.use_not_given": 80.0}),
    (
        "1202 公路 in STBHHX",
        facts("1202", layer("STBHHX", 300.0)),
        CONDITIONAL,
        {"ecology.linear_infrastructure": 300.0},
    ),
    ("1205 管道 in STBHHX", facts("1205", layer("STBHHX", 30.0)), CONDITIONAL, {"ecology.linear_infrastructure": 30.0}),
    ("1201 铁路 in STBHHX", facts("1201", layer("STBHHX", 30.0)), CONDITIONAL, {"ecology.linear_infrastructure": 30.0}),
    ("0701 in STBHHX", facts("0701", layer("STBHHX", 300.0)), PROHIBITED, {"ecology.construction": 300.0}),
    ("1207 城镇道路 in STBHHX", facts("1207", layer("STBHHX", 300.0)), PROHIBITED, {"ecology.construction": 300.0}),
    ("0303 灌木林 in STBHHX", facts("0303", layer("STBHHX", 9000.0)), PASS, {}),
    ("0501 湿地 in STBHHX", facts("0501", layer("STBHHX", 9000.0)), PASS, {}),
    ("no use in STBHHX", facts(None, layer("STBHHX", 9000.0)), USE_REQUIRED, {"ecology.use_not_given": 9000.0}),
    (
        "1001 工业 partly outside CZKFBJ",
        facts("1001", layer("CZKFBJ", 6543.21)),
        PROHIBITED,
        {"urban_boundary.urban_construction_outside": PARCEL_M2 - 6543.21},
    ),
    (
        "0901 商业 wholly outside CZKFBJ",
        facts("0901", layer("CZKFBJ", 0.0)),
        PROHIBITED,
        {"urban_boundary.urban_construction_outside": PARCEL_M2},
    ),
    ("1001 wholly inside CZKFBJ", facts("1001", layer("CZKFBJ", PARCEL_M2)), PASS, {}),
    ("0703 农村宅基地 outside CZKFBJ", facts("0703", layer("CZKFBJ", 0.0)), PASS, {}),
    ("1002 采矿 outside CZKFBJ", facts("1002", layer("CZKFBJ", 0.0)), PASS, {}),
    ("1202 公路 outside CZKFBJ", facts("1202", layer("CZKFBJ", 0.0)), PASS, {}),
    (
        "no use outside CZKFBJ",
        facts(None, layer("CZKFBJ", 0.0)),
        USE_REQUIRED,
        {"urban_boundary.use_not_given": PARCEL_M2},
    ),
    ("no use inside CZKFBJ, nothing else touched", facts(None, layer("CZKFBJ", PARCEL_M2)), USE_REQUIRED, {}),
    (
        "no use in 高易发",
        facts(None, layer("DZZHYFQ", 800.0, categories={"高易发": 300.0, "中易发": 500.0})),
        USE_REQUIRED,
        {"hazard.use_not_given": 300.0},
    ),
    (
        "no use under the township plan",
        facts(None, layer("YDYHGHFQ", PARCEL_M2, plan={"0701": 6000.0, "1001": 4000.0})),
        USE_REQUIRED,
        {"township_plan.use_not_given": PARCEL_M2},
    ),
    (
        "0701 in 高易发 and 中易发",
        facts("0701", layer("DZZHYFQ", 1000.0, categories={"高易发": 200.0, "中易发": 800.0})),
        CONDITIONAL,
        {"hazard.high_susceptibility": 200.0},
    ),
    (
        "short category value 高",
        facts("1202", layer("DZZHYFQ", 50.0, categories={"高": 50.0})),
        CONDITIONAL,
        {"hazard.high_susceptibility": 50.0},
    ),
    ("0701 in 中易发 only", facts("0701", layer("DZZHYFQ", 800.0, categories={"中易发": 800.0})), PASS, {}),
    ("0101 in 高易发", facts("0101", layer("DZZHYFQ", 800.0, categories={"高易发": 800.0})), PASS, {}),
    (
        "overall verdict is the worst level",
        facts("1202", layer("STBHHX", 300.0), layer("YJJBNT", 40.0), layer("CZKFBJ", 0.0)),
        PROHIBITED,
        {"farmland.construction": 40.0, "ecology.linear_infrastructure": 300.0},
    ),
    (
        "edge-only contact: 0 m² overlaps pass",
        facts("0701", layer("YJJBNT", 0.0), layer("STBHHX", 0.0), layer("CZKFBJ", PARCEL_M2)),
        PASS,
        {},
    ),
    ("layer not checked: no finding", facts("0701", layer("CZKFBJ", PARCEL_M2)), PASS, {}),
]


@pytest.mark.parametrize(("facts_", "verdict", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_cases(
    rules: RuleSet, catalog: Catalog, facts_: CheckFacts, verdict: str, expected: dict[str, float]
) -> None:
    result = evaluate(rules, facts_, catalog)
    assert result.verdict == verdict
    assert {f.rule_id: f.area_m2 for f in result.findings} == expected  # exact, unrounded
    for finding in result.findings:
        assert finding.level == EXPECTED_RULES[finding.rule_id]
        assert finding.citation == rules.rule(finding.rule_id).citation
        assert finding.layer_code == catalog.layer_by_role(rules.rule(finding.rule_id).layer_role).code
        assert not finding.minor


def test_area_outside_is_reported_exactly(rules: RuleSet, catalog: Catalog) -> None:
    boundary = layer("CZKFBJ", 6543.21)
    result = evaluate(rules, facts("1001", boundary), catalog)
    (finding,) = result.findings
    assert finding.rule_id == "urban_boundary.urban_construction_outside"
    assert finding.area_m2 == boundary.outside_m2  # the very value the engine measured
    assert "3,456.79 平方米（0.3457 公顷，5.19 亩）" in finding.message_zh
    assert "3,456.79 m² (0.3457 ha, 5.19 mu)" in finding.message_en
    assert "1001 工业用地" in finding.message_zh and "城镇开发边界之外" in finding.message_zh


def test_findings_are_ordered_worst_first(rules: RuleSet, catalog: Catalog) -> None:
    plan = layer("YDYHGHFQ", PARCEL_M2, plan={"0101": PARCEL_M2})
    result = evaluate(
        rules,
        facts("0701", plan, layer("STBHHX", 10.0), layer("YJJBNT", 20.0), layer("CZKFBJ", 0.0)),
        catalog,
    )
    assert [f.rule_id for f in result.findings] == [
        "farmland.construction",
        "ecology.construction",
        "urban_boundary.urban_construction_outside",
        "township_plan.use_mismatch",
    ]
    assert result.verdict == PROHIBITED and result.verdict_en == "prohibited"


def test_findings_order_does_not_follow_the_file(tmp_path: Path) -> None:
    folder = _copy_layers(tmp_path)

    def conditional_first(data: dict[str, Any]) -> None:
        data["rules"].insert(0, data["rules"].pop(data["rules"].index(_rule(data, "township_plan.use_mismatch"))))

    _edit_rules(folder, conditional_first)
    catalog = load_catalog(folder)
    rules = load_rules(folder, catalog)
    assert rules.ids[0] == "township_plan.use_mismatch"
    plan = layer("YDYHGHFQ", PARCEL_M2, plan={"0101": PARCEL_M2})
    result = evaluate(rules, facts("0701", plan, layer("STBHHX", 5.0), layer("YJJBNT", 5.0)), catalog)
    assert [f.rule_id for f in result.findings] == [
        "farmland.construction",
        "ecology.construction",
        "township_plan.use_mismatch",
    ]
    assert result.verdict == PROHIBITED


# --------------------------------------------------------------------------------------------------
# 微小压盖
# --------------------------------------------------------------------------------------------------


def test_minor_overlap_is_reported_with_its_level(rules: RuleSet, catalog: Catalog) -> None:
    sliver = layer("YJJBNT", 0.3)
    assert sliver.minor
    result = evaluate(rules, facts("0701", sliver), catalog)
    (finding,) = result.findings
    assert finding.rule_id == "farmland.construction" and finding.minor
    assert finding.level == PROHIBITED and result.verdict == PROHIBITED  # level kept: the reviewer decides
    assert finding.area_m2 == 0.3
    assert "0.30 平方米" in finding.message_zh
    assert "微小压盖" in finding.message_zh and "可能为数据误差，请核实" in finding.message_zh
    assert "Minor overlap" in finding.message_en


def test_minor_flag_from_the_engine_is_honoured(rules: RuleSet, catalog: Catalog) -> None:
    # the engine may use a larger threshold than the rules file: its flag still marks the finding
    engine_minor = LayerFacts("STBHHX", "red_line_ecology", 5.0, PARCEL_M2 - 5.0, 1, True)
    (finding,) = evaluate(rules, facts("1202", engine_minor), catalog).findings
    assert finding.minor and finding.level == CONDITIONAL and "微小压盖" in finding.message_zh


def test_minor_area_outside(rules: RuleSet, catalog: Catalog) -> None:
    (finding,) = evaluate(rules, facts("1001", layer("CZKFBJ", PARCEL_M2 - 0.25)), catalog).findings
    assert finding.minor and finding.level == PROHIBITED
    assert "微小超出" in finding.message_zh and "0.25 平方米" in finding.message_zh


def test_ordinary_overlap_is_not_minor(rules: RuleSet, catalog: Catalog) -> None:
    (finding,) = evaluate(rules, facts("0701", layer("YJJBNT", 1.5)), catalog).findings
    assert not finding.minor and "微小" not in finding.message_zh and "Minor" not in finding.message_en


# --------------------------------------------------------------------------------------------------
# Township plan
# --------------------------------------------------------------------------------------------------


def test_plan_mismatch_reports_the_mismatching_uses(rules: RuleSet, catalog: Catalog) -> None:
    plan = layer("YDYHGHFQ", 8000.0, plan={"070101": 5000.0, "0101": 2000.0, "1001": 1000.0, "0703": 0.0})
    result = evaluate(rules, facts("0701", plan), catalog)
    (finding,) = result.findings
    assert finding.rule_id == "township_plan.use_mismatch" and finding.level == CONDITIONAL
    assert finding.area_m2 == 3000.0  # 0101 + 1001; 070101 is residential like 0701
    assert result.verdict == CONDITIONAL
    assert "0101 水田 2,000.00 平方米、1001 工业用地 1,000.00 平方米" in finding.message_zh
    assert "070101" not in finding.message_zh
    assert "0101 Paddy field 2,000.00 m²; 1001 Industrial land 1,000.00 m²" in finding.message_en


@pytest.mark.parametrize(
    ("land_use", "plan"),
    [
        ("0701", {"0701": 4000.0, "070102": 1000.0, "0703": 500.0}),  # same first-level class 07
        ("1001", {"10": 3000.0}),
        ("0701", {}),  # parcel outside the plan's coverage
    ],
)
def test_plan_without_mismatch(rules: RuleSet, catalog: Catalog, land_use: str | None, plan: dict[str, float]) -> None:
    result = evaluate(rules, facts(land_use, layer("YDYHGHFQ", sum(plan.values()), plan=plan)), catalog)
    assert result.findings == [] and result.verdict == PASS


def test_plan_code_missing_from_the_classification_is_listed(rules: RuleSet, catalog: Catalog) -> None:
    plan = layer("YDYHGHFQ", 700.0, plan={"9901": 600.0, " ": 100.0})
    (finding,) = evaluate(rules, facts("0701", plan), catalog).findings
    assert finding.area_m2 == 700.0
    assert "9901 （分类中无此代码） 600.00 平方米" in finding.message_zh
    assert "（空）" in finding.message_zh and "(empty)" in finding.message_en


# --------------------------------------------------------------------------------------------------
# Messages and output
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("area", "m2", "ha", "mu"),
    [
        (1_000_000.0, "1,000,000.00", "100.0000", "1,500.00"),
        (2_000.0, "2,000.00", "0.2000", "3.00"),
        (10_000 / 15, "666.67", "0.0667", "1.00"),  # exactly one 亩
        (123_456.789, "123,456.79", "12.3457", "185.19"),
    ],
)
def test_messages_carry_exact_area_figures(
    rules: RuleSet, catalog: Catalog, area: float, m2: str, ha: str, mu: str
) -> None:
    (finding,) = evaluate(rules, facts("0701", layer("YJJBNT", area, parcel_m2=area)), catalog).findings
    assert f"{m2} 平方米（{ha} 公顷，{mu} 亩）" in finding.message_zh
    assert f"{m2} m² ({ha} ha, {mu} mu)" in finding.message_en
    assert finding.area_m2 == area


def test_to_dict_is_json_ready(rules: RuleSet, catalog: Catalog) -> None:
    result = evaluate(rules, facts("1202", layer("STBHHX", 1_000_000.0, parcel_m2=1_000_000.0)), catalog)
    out = json.loads(json.dumps(result.to_dict(), ensure_ascii=False))
    assert out["verdict"] == "有条件" and out["verdict_en"] == "conditional"
    assert out["rules_fingerprint"] == rules.fingerprint
    (finding,) = out["findings"]
    assert finding["rule_id"] == "ecology.linear_infrastructure"
    assert finding["level_en"] == "conditional" and finding["layer_code"] == "STBHHX"
    assert finding["area"] == {"m2": 1_000_000.0, "hectare": 100.0, "mu": 1500.0}
    assert finding["minor"] is False
    assert "自然资发〔2022〕142号" in finding["citation"]
    assert "1202 公路用地" in finding["message_zh"]


def test_no_findings_is_a_pass(rules: RuleSet, catalog: Catalog) -> None:
    result = evaluate(rules, facts("0701"), catalog)
    assert result.verdict == PASS and result.findings == []
    assert result.to_dict()["verdict_en"] == "pass"


# --------------------------------------------------------------------------------------------------
# No proposed land use: 需补充用途
# --------------------------------------------------------------------------------------------------

EVERYTHING_TOUCHED = (
    layer("YJJBNT", 500.0),
    layer("STBHHX", 300.0),
    layer("CZKFBJ", 0.0),
    layer("YDYHGHFQ", PARCEL_M2, plan={"0701": PARCEL_M2}),
    layer("DZZHYFQ", 200.0, categories={"高易发": 200.0}),
)


@pytest.mark.parametrize(
    "touched",
    [(), (layer("CZKFBJ", PARCEL_M2),), (layer("YJJBNT", 500.0),), EVERYTHING_TOUCHED],
    ids=["nothing", "inside the boundary", "farmland", "everything"],
)
def test_no_use_is_never_a_pass_or_conditional(rules: RuleSet, catalog: Catalog, touched: tuple[LayerFacts]) -> None:
    result = evaluate(rules, facts(None, *touched), catalog)
    assert result.verdict == USE_REQUIRED and result.verdict_en == "use_required"
    assert all(f.level == USE_REQUIRED for f in result.findings)  # badge and text both say: give the use
    for finding in result.findings:
        assert "未提供拟用地类型" in finding.message_zh and "请补充拟用地类型" in finding.message_zh
        english = finding.message_en.lower()
        assert "no proposed land use" in english and "give the proposed use" in english


def test_no_use_still_lists_what_the_parcel_touches(rules: RuleSet, catalog: Catalog) -> None:
    result = evaluate(rules, facts(None, *EVERYTHING_TOUCHED), catalog)
    assert {f.rule_id: f.area_m2 for f in result.findings} == {
        "farmland.use_not_given": 500.0,
        "ecology.use_not_given": 300.0,
        "urban_boundary.use_not_given": PARCEL_M2,
        "township_plan.use_not_given": PARCEL_M2,
        "hazard.use_not_given": 200.0,
    }
    plan = next(f for f in result.findings if f.rule_id == "township_plan.use_not_given")
    assert "0701 城镇住宅用地 10,000.00 平方米" in plan.message_zh
    assert "0701 Urban housing land 10,000.00 m²" in plan.message_en


def test_every_use_gives_a_verdict_no_softer_than_no_use_claims(rules: RuleSet, catalog: Catalog) -> None:
    # 需补充用途 claims nothing about the use: some use must reach 禁止 where it is given, another may pass
    touched = (layer("YJJBNT", 500.0), layer("CZKFBJ", 0.0))
    verdicts = {lu.code: evaluate(rules, facts(lu.code, *touched), catalog).verdict for lu in catalog.land_uses}
    assert verdicts["0701"] == PROHIBITED and verdicts["0101"] == PASS
    assert USE_REQUIRED not in verdicts.values()  # the outcome belongs to a missing use only


def test_a_rule_that_holds_whatever_the_use_prohibits_without_one(tmp_path: Path) -> None:
    folder = _copy_layers(tmp_path)

    def use_independent(data: dict[str, Any]) -> None:
        rule = dict(_rule(data, "ecology.construction"), id="ecology.any_overlap", level="禁止")
        rule["condition"] = {"relation": "inside"}
        rule["message_zh"] = rule["message_en"] = "{area_m2}"
        data["rules"].append(rule)

    _edit_rules(folder, use_independent)
    catalog = load_catalog(folder)
    result = evaluate(load_rules(folder, catalog), facts(None, layer("STBHHX", 300.0)), catalog)
    assert result.verdict == PROHIBITED
    assert [(f.rule_id, f.level) for f in result.findings] == [
        ("ecology.any_overlap", PROHIBITED),
        ("ecology.use_not_given", USE_REQUIRED),
    ]


def test_unknown_proposed_land_use(rules: RuleSet, catalog: Catalog) -> None:
    with pytest.raises(UnknownLandUseError, match="'0799'"):
        evaluate(rules, facts("0799", layer("YJJBNT", 10.0)), catalog)


# --------------------------------------------------------------------------------------------------
# Broken rule files
# --------------------------------------------------------------------------------------------------


def _copy_layers(tmp_path: Path) -> Path:
    target = tmp_path / "layers"
    shutil.copytree(DEFAULT_LAYERS_DIR, target)
    return target


def _edit_rules(folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = folder / "rules.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _rule(data: dict[str, Any], rule_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in data["rules"] if r["id"] == rule_id)
    return found


def _load_error(folder: Path) -> CatalogError:
    with pytest.raises(CatalogError) as info:
        load_rules(folder, load_catalog(folder))
    return info.value


def _duplicate_id(data: dict[str, Any]) -> None:
    _rule(data, "ecology.construction")["id"] = "farmland.construction"


BROKEN: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    # (case, change, entry, problem)
    (
        "unknown condition key",
        lambda d: _rule(d, "farmland.construction")["condition"].update(near=True),
        "rule 'farmland.construction'",
        "unknown key 'near' in condition",
    ),
    (
        "unknown land-use flag",
        lambda d: _rule(d, "ecology.construction")["condition"]["land_use"].update(residential=True),
        "rule 'ecology.construction'",
        "unknown key 'residential' in condition.land_use",
    ),
    (
        "unknown role",
        lambda d: _rule(d, "ecology.construction").update(layer_role="red_line_forest"),
        "rule 'ecology.construction'",
        "unknown layer_role 'red_line_forest'",
    ),
    (
        "unknown level",
        lambda d: _rule(d, "hazard.high_susceptibility").update(level="forbidden"),
        "rule 'hazard.high_susceptibility'",
        "level: Input should be '禁止', '需补充用途', '有条件' or '通过'",
    ),
    (
        "unknown relation",
        lambda d: _rule(d, "hazard.high_susceptibility")["condition"].update(relation="touches"),
        "rule 'hazard.high_susceptibility'",
        "condition.relation: Input should be 'inside' or 'outside'",
    ),
    (
        "bad land-use code",
        lambda d: _rule(d, "farmland.agricultural_facility")["condition"].update(land_use_codes=["0699"]),
        "rule 'farmland.agricultural_facility'",
        "unknown 用地用海 code '0699'",
    ),
    (
        "unquoted land-use code",
        lambda d: _rule(d, "farmland.agricultural_facility")["condition"].update(land_use_codes=[6]),
        "rule 'farmland.agricultural_facility'",
        "must be a quoted string",
    ),
    ("duplicate id", _duplicate_id, "rule 'farmland.construction'", "duplicate rule id 'farmland.construction'"),
    (
        "unknown placeholder",
        lambda d: _rule(d, "farmland.construction").update(message_en="{area_acres} acres"),
        "rule 'farmland.construction'",
        "message_en: unknown placeholder {area_acres}",
    ),
    (
        "land-use placeholder in a rule without a use",
        lambda d: _rule(d, "farmland.use_not_given").update(message_zh="{land_use_name}"),
        "rule 'farmland.use_not_given'",
        "message_zh: unknown placeholder {land_use_name}",
    ),
    (
        "unbalanced brace",
        lambda d: _rule(d, "ecology.use_not_given").update(message_zh="压盖 {area_m2 平方米"),
        "rule 'ecology.use_not_given'",
        "message_zh: bad placeholder syntax",
    ),
    (
        "land_use_given false with a land-use filter",
        lambda d: _rule(d, "farmland.construction")["condition"].update(land_use_given=False),
        "rule 'farmland.construction'",
        "land_use_given: false contradicts",
    ),
    (
        "a rule about a missing use at another level than 需补充用途",
        lambda d: _rule(d, "urban_boundary.use_not_given").update(level="通过"),
        "rule 'urban_boundary.use_not_given'",
        "give it level 需补充用途 so its badge agrees with its text",
    ),
    (
        "需补充用途 on a rule that needs no missing use",
        lambda d: _rule(d, "hazard.high_susceptibility").update(level="需补充用途"),
        "rule 'hazard.high_susceptibility'",
        "level 需补充用途 is only for rules with land_use_given: false",
    ),
    (
        "plan mismatch on another layer",
        lambda d: _rule(d, "township_plan.use_mismatch").update(layer_role="zoning"),
        "rule 'township_plan.use_mismatch'",
        "applies to layer_role 'township_plan' only",
    ),
    (
        "category field not on the layer",
        lambda d: _rule(d, "hazard.high_susceptibility")["condition"]["categories"].update(field="YFDJ"),
        "rule 'hazard.high_susceptibility'",
        "condition.categories.field 'YFDJ' is not a field of layer 'DZZHYFQ'",
    ),
    (
        "negative min_area_m2",
        lambda d: _rule(d, "farmland.construction")["condition"].update(min_area_m2=-1),
        "rule 'farmland.construction'",
        "condition.min_area_m2",
    ),
    (
        "missing citation",
        lambda d: _rule(d, "farmland.construction").pop("citation"),
        "rule 'farmland.construction'",
        "missing key 'citation'",
    ),
    ("rule without id", lambda d: d["rules"][2].pop("id"), "rule #3 (no id)", "missing key 'id'"),
]


@pytest.mark.parametrize(("change", "entry", "problem"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_rule_file(tmp_path: Path, change: Callable[[dict[str, Any]], None], entry: str, problem: str) -> None:
    folder = _copy_layers(tmp_path)
    _edit_rules(folder, change)
    error = _load_error(folder)
    message = str(error)
    assert "rules.yaml" in message and entry in message and problem in message
    assert error.details["file"].endswith("rules.yaml")
    assert error.details["entry"] == entry
    assert problem in error.details["problem"]


def test_every_problem_is_reported(tmp_path: Path) -> None:
    folder = _copy_layers(tmp_path)

    def change(data: dict[str, Any]) -> None:
        _rule(data, "farmland.construction").update(level="forbidden")
        _rule(data, "ecology.construction").update(layer_role="forest")

    _edit_rules(folder, change)
    lines = str(_load_error(folder)).splitlines()
    assert len(lines) == 2
    assert "rule 'farmland.construction'" in lines[0] and "rule 'ecology.construction'" in lines[1]


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    folder = _copy_layers(tmp_path)
    path = folder / "rules.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if line.strip() == "layer_role: red_line_ecology")
    lines[index] = lines[index].replace("red_line_ecology", "[red_line_ecology")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    error = _load_error(folder)
    assert "rules.yaml" in str(error) and "YAML syntax error" in str(error)
    assert error.details["entry"] == "(syntax)"
    assert error.details["line"] in (index + 1, index + 2)


def test_missing_rules_file(tmp_path: Path) -> None:
    folder = _copy_layers(tmp_path)
    (folder / "rules.yaml").unlink()
    error = _load_error(folder)
    assert error.details["file"].endswith("rules.yaml") and "missing" in str(error)


def test_rules_must_be_used_with_their_catalogue(tmp_path: Path, rules: RuleSet) -> None:
    folder = _copy_layers(tmp_path)
    path = folder / "catalog.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    other = load_catalog(folder)
    assert other.fingerprint != rules.catalog_fingerprint
    with pytest.raises(ConfigurationError, match="another catalogue"):
        evaluate(rules, facts("0701", layer("YJJBNT", 10.0)), other)
    # loaded against that catalogue, the same rules apply
    own = load_rules(folder, other)
    assert evaluate(own, facts("0701", layer("YJJBNT", 10.0)), other).verdict == PROHIBITED
