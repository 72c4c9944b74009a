"""Tests of the layer catalogue (layers/*.yaml) and its validating loader (gis_platform/catalog.py)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gis_platform.catalog import (
    DEFAULT_LAYERS_DIR,
    GROUPS,
    ROLES,
    Catalog,
    clear_catalog_cache,
    load_catalog,
)
from gis_platform.errors import CatalogError, UnknownLandUseError, UnknownLayerError

EXPECTED_GROUPS = {
    "XZQ": "现状",
    "DLTB": "现状",
    "YJJBNT": "规划",
    "STBHHX": "规划",
    "CZKFBJ": "规划",
    "GHFQ": "规划",
    "YDYHGHFQ": "规划",
    "DZZHYFQ": "管理",
    "DZZHD": "管理",
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


# --------------------------------------------------------------------------------------------------
# The shipped catalogue
# --------------------------------------------------------------------------------------------------


def test_shipped_catalogue_has_the_nine_standard_layers(catalog: Catalog) -> None:
    assert list(catalog.codes) == list(EXPECTED_GROUPS)
    assert {layer.code: layer.group for layer in catalog.layers} == EXPECTED_GROUPS
    assert catalog.storage_srid == 4490
    assert catalog.default_area_model == "ellipsoidal"
    assert catalog.groups == GROUPS == ("现状", "规划", "管理")


def test_groups_and_check_layers(catalog: Catalog) -> None:
    assert [layer.code for layer in catalog.layers_in_group("现状")] == ["XZQ", "DLTB"]
    assert [layer.code for layer in catalog.layers_in_group("管理")] == ["DZZHYFQ", "DZZHD"]
    assert {layer.code for layer in catalog.check_layers()} == {
        "DLTB",
        "YJJBNT",
        "STBHHX",
        "CZKFBJ",
        "YDYHGHFQ",
        "DZZHYFQ",
    }
    with pytest.raises(UnknownLayerError, match="现状, 规划, 管理"):
        catalog.layers_in_group("社会经济")


def test_geometry_roles_and_id_fields(catalog: Catalog) -> None:
    assert catalog.layer("DZZHD").geometry_type == "point"
    assert all(layer.geometry_type == "polygon" for layer in catalog.layers if layer.code != "DZZHD")
    assert catalog.layer_by_role("red_line_farmland").code == "YJJBNT"
    assert catalog.layer_by_role("red_line_ecology").code == "STBHHX"
    assert catalog.layer_by_role("urban_boundary").code == "CZKFBJ"
    assert catalog.layer_by_role("township_plan").code == "YDYHGHFQ"
    assert {layer.role for layer in catalog.layers} <= set(ROLES)
    assert catalog.layer("YJJBNT").feature_id_field == "YJJBNTTBBH"
    assert catalog.layer("DZZHD").feature_id_field == "YHDBH"
    assert catalog.layer("DZZHD").name_field == "YHDMC"
    with pytest.raises(UnknownLayerError, match="unknown layer role"):
        catalog.layer_by_role("no_such_role")


def test_key_fields_follow_the_architecture_table(catalog: Catalog) -> None:
    dltb = [f.name for f in catalog.layer("DLTB").key_fields]
    assert dltb == [
        "BSM", "TBBH", "DLBM", "DLMC", "QSDWDM", "QSDWMC", "ZLDWDM", "ZLDWMC", "TBMJ", "KCXS", "KCMJ", "TBDLMJ",
    ]  # fmt: skip
    assert [f.name for f in catalog.layer("YJJBNT").key_fields] == [
        "YJJBNTTBBH", "TBBH", "DLBM", "QSDWDM", "ZLDWDM", "YJJBNTTBMJ", "GDPDJB",
    ]  # fmt: skip
    assert [f.name for f in catalog.layer("CZKFBJ").key_fields] == [
        "BSM", "YSDM", "XZQDM", "XZQMC", "GHFQDM", "GHFQMC", "MJ",
    ]  # fmt: skip
    wxrs = catalog.layer("DZZHD").get_field("wxrs")
    assert wxrs is not None and wxrs.type == "integer"


def test_styles(catalog: Catalog) -> None:
    yjjbnt = catalog.layer("YJJBNT").style
    assert yjjbnt.fill == "#F5D94D" and yjjbnt.pattern == "hatch"
    assert catalog.layer("STBHHX").style.stroke == "#E60000"
    plan = catalog.layer("YDYHGHFQ").style
    assert plan.resolve("070101")["fill"] == "#FFFF2D"  # 城镇住宅 → 居住 yellow
    assert plan.resolve("070301")["fill"] != "#FFFF2D"  # 农村宅基地 has its own colour
    assert plan.resolve("1001")["fill"] == "#BB9674"  # 工业 brown
    assert plan.resolve("0901")["fill"] == "#FF0000"  # 商业 red
    assert plan.resolve("9999")["fill"] == plan.fill  # unknown code: base style
    dltb = catalog.layer("DLTB").style
    assert dltb.resolve("0303")["label_zh"] == "湿地"  # 红树林地 is in the 湿地 class, not 林地
    assert dltb.resolve("0301")["label_zh"] == "林地"
    hazard = catalog.layer("DZZHYFQ").style
    assert hazard.resolve("高易发")["fill"] == "#E60000"
    assert catalog.layer("DZZHD").style.marker_radius is not None


def test_default_loader_is_cached() -> None:
    assert load_catalog() is load_catalog()
    assert load_catalog(DEFAULT_LAYERS_DIR) is load_catalog()
    clear_catalog_cache()
    fresh = load_catalog()
    assert fresh is load_catalog()
    assert len(fresh.fingerprint) == 64


# --------------------------------------------------------------------------------------------------
# Layer lookup and field mapping
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["dltb", "DLTB", "Dltb", " dltb "])
def test_layer_lookup_is_case_insensitive(catalog: Catalog, code: str) -> None:
    assert catalog.layer(code).code == "DLTB"
    assert catalog.has_layer(code)


def test_unknown_layer_lists_known_codes(catalog: Catalog) -> None:
    with pytest.raises(UnknownLayerError) as info:
        catalog.layer("JBNT")
    message = str(info.value)
    assert "'JBNT'" in message
    for code in EXPECTED_GROUPS:
        assert code in message
    assert info.value.details["known"] == list(EXPECTED_GROUPS)


def test_map_fields_case_insensitive_aliases_and_unknown_kept(catalog: Catalog) -> None:
    dltb = catalog.layer("DLTB")
    mapping = dltb.map_fields(["bsm", "Tbbh", "DLDM", "tkxs", "Shape_Area", "备注"])
    assert mapping == {
        "bsm": "BSM",
        "Tbbh": "TBBH",
        "DLDM": "DLBM",  # alias
        "tkxs": "KCXS",  # alias, case-insensitive
        "Shape_Area": "Shape_Area",  # unknown: kept as is
        "备注": "备注",
    }
    assert catalog.layer("YDYHGHFQ").map_fields(["ydyhdm"]) == {"ydyhdm": "YDYHFLDM"}


def test_map_fields_canonical_name_wins_over_alias(catalog: Catalog) -> None:
    mapping = catalog.layer("DLTB").map_fields(["DLDM", "dlbm"])
    assert mapping == {"DLDM": "DLDM", "dlbm": "DLBM"}
    assert list(mapping) == ["DLDM", "dlbm"]  # source order kept
    # two spellings differing in case only: the exact one wins, mapped names stay unique
    mapping = catalog.layer("DLTB").map_fields(["dlbm", "DLBM"])
    assert mapping == {"dlbm": "dlbm", "DLBM": "DLBM"}


# --------------------------------------------------------------------------------------------------
# 用地用海 classification
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "construction"),
    [
        ("0701", True),
        ("0703", True),
        ("1001", True),
        ("1002", True),
        ("1202", True),
        ("16", True),
        ("0101", False),
        ("0303", False),
        ("0506", False),
        ("06", False),  # 农业设施建设用地 is managed as 农用地 (decision documented in landuse.yaml)
        ("1701", False),
        ("2304", False),
    ],
)
def test_land_use_construction_flags(catalog: Catalog, code: str, construction: bool) -> None:
    assert catalog.is_construction(code) is construction


def test_all_first_level_codes_present(catalog: Catalog) -> None:
    first = [c.code for c in catalog.land_uses if c.level == 1]
    assert first == [f"{n:02d}" for n in range(1, 25)]
    assert catalog.land_use("10").name_zh == "工矿用地"
    assert catalog.land_use("1003").name_zh == "盐田"
    for code in [f"{n:02d}" for n in range(7, 17)]:
        assert catalog.land_use(code).construction, code
    for code in ["01", "02", "03", "04", "05"]:
        assert catalog.land_use(code).agricultural and not catalog.land_use(code).construction
    for code in ["18", "19", "20", "21", "22", "24"]:
        assert catalog.land_use(code).sea


def test_second_level_inherits_from_first_level(catalog: Catalog) -> None:
    parent = catalog.land_use("08")
    child = catalog.land_use("0804")
    assert child.parent == "08" and child.level == 2 and child.first_level == "08"
    for flag in ("construction", "agricultural", "linear_infrastructure", "urban_construction", "sea"):
        assert getattr(child, flag) == getattr(parent, flag), flag
    grandchild = catalog.land_use("070101")
    assert grandchild.level == 3 and grandchild.parent == "0701"
    assert grandchild.urban_construction  # inherited through 0701 from 07
    assert not catalog.land_use("070301").urban_construction  # inherited from the 0703 override


def test_urban_construction_flags(catalog: Catalog) -> None:
    assert catalog.land_use("0701").urban_construction
    assert catalog.land_use("1001").urban_construction
    assert catalog.land_use("0901").urban_construction
    assert not catalog.land_use("0703").urban_construction  # 农村宅基地
    assert not catalog.land_use("1002").urban_construction  # 采矿 sits where the ore is
    assert not catalog.land_use("1202").urban_construction  # linear infrastructure
    assert not catalog.land_use("0101").urban_construction


def test_linear_infrastructure_flags(catalog: Catalog) -> None:
    for code in ("1201", "1202", "1205"):
        assert catalog.land_use(code).linear_infrastructure, code
        assert catalog.land_use(code).construction, code
    for code in ("12", "1203", "1207", "0701", "1001", "1303"):
        assert not catalog.land_use(code).linear_infrastructure, code


def test_unknown_land_use_code(catalog: Catalog) -> None:
    with pytest.raises(UnknownLandUseError, match="'9999'"):
        catalog.land_use("9999")
    with pytest.raises(UnknownLandUseError):
        catalog.is_construction("25")
    assert catalog.land_use(" 0701 ").code == "0701"


# --------------------------------------------------------------------------------------------------
# 三调 地类 codes
# --------------------------------------------------------------------------------------------------


def test_land_survey_codes(catalog: Catalog) -> None:
    paddy = catalog.land_survey_class("0101")
    assert paddy.dlmc == "水田" and paddy.is_cultivated and not paddy.is_construction
    assert paddy.class_code == "01"
    assert catalog.land_survey_class("05h1").dlmc == "商业服务业设施用地"  # case-insensitive
    assert catalog.land_survey_class("0702").is_construction
    assert not catalog.land_survey_class("1006").is_construction  # 农村道路: 农用地
    assert not catalog.land_survey_class("1202").is_construction  # 设施农用地
    assert catalog.land_survey_class("1001").dlmc == "铁路用地"  # not 用地用海 1001 工业用地
    mangrove = catalog.land_survey_class("0303")
    assert mangrove.class_code == "00" and mangrove.class_name_zh == "湿地"
    assert catalog.land_survey_class("09").is_construction
    cultivated = {c.dlbm for c in catalog.land_survey_classes if c.is_cultivated}
    assert cultivated == {"0101", "0102", "0103"}
    assert catalog.town_village_attributes["203"].name_zh == "村庄"
    with pytest.raises(UnknownLandUseError, match="DLBM"):
        catalog.land_survey_class("0999")


# --------------------------------------------------------------------------------------------------
# Validation of broken catalogues
# --------------------------------------------------------------------------------------------------


def _copy_catalogue(tmp_path: Path) -> Path:
    target = tmp_path / "layers"
    shutil.copytree(DEFAULT_LAYERS_DIR, target)
    return target


def _edit_text(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"test fixture out of date: {old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _edit_yaml(path: Path, change: Callable[[Any], None]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _load_error(directory: Path) -> CatalogError:
    with pytest.raises(CatalogError) as info:
        load_catalog(directory)
    return info.value


def _layer(data: dict[str, Any], code: str) -> dict[str, Any]:
    found: dict[str, Any] = next(layer for layer in data["layers"] if layer["code"] == code)
    return found


def test_duplicate_layer_code(tmp_path: Path) -> None:
    folder = _copy_catalogue(tmp_path)

    def duplicate(data: Any) -> None:
        copy = dict(_layer(data, "GHFQ"))
        copy["role"] = "other"
        data["layers"].append(copy)

    _edit_yaml(folder / "catalog.yaml", duplicate)
    error = _load_error(folder)
    message = str(error)
    assert "catalog.yaml" in message
    assert "layer 'GHFQ'" in message
    assert "duplicate layer code 'GHFQ'" in message
    assert error.details["file"].endswith("catalog.yaml")
    assert error.details["entry"] == "layer 'GHFQ'"


def test_bad_colour(tmp_path: Path) -> None:
    folder = _copy_catalogue(tmp_path)
    _edit_text(folder / "catalog.yaml", 'fill: "#F5D94D"', 'fill: "#F5D94"')
    message = str(_load_error(folder))
    assert "catalog.yaml" in message
    assert "layer 'YJJBNT'" in message
    assert "style.fill" in message and "bad colour '#F5D94'" in message and "#RRGGBB" in message


def test_bad_colour_in_a_category(tmp_path: Path) -> None:
    folder = _copy_catalogue(tmp_path)

    def change(data: Any) -> None:
        _layer(data, "YDYHGHFQ")["style"]["categorized"]["categories"][0]["fill"] = "yellow"

    _edit_yaml(folder / "catalog.yaml", change)
    message = str(_load_error(folder))
    assert "layer 'YDYHGHFQ'" in message
    assert "style.categorized.categories[0].fill" in message and "bad colour 'yellow'" in message


def test_unknown_key(tmp_path: Path) -> None:
    folder = _copy_catalogue(tmp_path)
    _edit_yaml(folder / "catalog.yaml", lambda d: _layer(d, "STBHHX").update(colour="#00FF00"))
    message = str(_load_error(folder))
    assert "catalog.yaml" in message and "layer 'STBHHX'" in message and "unknown key 'colour'" in message


def test_unknown_key_in_a_field(tmp_path: Path) -> None:
    folder = _copy_catalogue(tmp_path)
    _edit_yaml(folder / "catalog.yaml", lambda d: _layer(d, "DLTB")["fields"][2].update(width=10))
    message = str(_load_error(folder))
    assert "layer 'DLTB'" in message and "unknown key 'width' in fields[2]" in message


def test_bad_group(tmp_path: Path) -> None:
    folder = _copy_catalogue(tmp_path)
    _edit_yaml(folder / "catalog.yaml", lambda d: _layer(d, "CZKFBJ").update(group="规划层"))
    message = str(_load_error(folder))
    assert "catalog.yaml" in message and "layer 'CZKFBJ'" in message
    assert "group" in message and "'规划层'" in message and "'现状', '规划' or '管理'" in message


def test_unknown_role_and_geometry(tmp_path: Path) -> None:
    folder = _copy_catalogue(tmp_path)

    def change(data: Any) -> None:
        _layer(data, "GHFQ")["role"] = "zones"
        _layer(data, "XZQ")["geometry_type"] = "multipolygon"

    _edit_yaml(folder / "catalog.yaml", change)
    message = str(_load_error(folder))
    assert "layer 'GHFQ'" in message and "role" in message and "'zones'" in message
    assert "layer 'XZQ'" in message and "geometry_type" in message and "'multipolygon'" in message
    assert len(message.splitlines()) == 2  # every problem reported, one per line


def test_feature_id_field_must_be_a_field(tmp_path: Path) -> None:
    folder = _copy_catalogue(tmp_path)
    _edit_yaml(folder / "catalog.yaml", lambda d: _layer(d, "DZZHD").update(feature_id_field="YHBH"))
    message = str(_load_error(folder))
    assert "layer 'DZZHD'" in message and "feature_id_field 'YHBH' is not among the fields" in message


def test_duplicate_field_name(tmp_path: Path) -> None:
    folder = _copy_catalogue(tmp_path)

    def change(data: Any) -> None:
        fields = _layer(data, "XZQ")["fields"]
        fields.append(dict(fields[2]))  # a second XZQDM

    _edit_yaml(folder / "catalog.yaml", change)
    message = str(_load_error(folder))
    assert "catalog.yaml" in message and "layer 'XZQ'" in message and "duplicate field name 'XZQDM'" in message


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    folder = _copy_catalogue(tmp_path)
    path = folder / "catalog.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if line.strip() == "name_zh: 生态保护红线")
    lines[index] = lines[index].replace("name_zh: 生态保护红线", "name_zh: [生态保护红线")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    error = _load_error(folder)
    message = str(error)
    assert "catalog.yaml" in message and "YAML syntax error" in message
    assert f"line {index + 1}" in message or f"line {index + 2}" in message
    assert error.details["line"] in (index + 1, index + 2)


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    folder = _copy_catalogue(tmp_path)
    _edit_text(folder / "catalog.yaml", "    name_zh: 生态保护红线\n", "    name_zh: 生态保护红线\n    name_zh: 红线\n")
    message = str(_load_error(folder))
    assert "catalog.yaml" in message and "duplicate key 'name_zh'" in message and "line " in message


def test_land_use_code_must_match_parent(tmp_path: Path) -> None:
    folder = _copy_catalogue(tmp_path)
    _edit_text(folder / "landuse.yaml", '{code: "1003", name_zh: 盐田', '{code: "1103", name_zh: 盐田')
    message = str(_load_error(folder))
    assert "landuse.yaml" in message and "land-use code '1103'" in message
    assert "does not match its parent '10'" in message


def test_unquoted_land_use_code(tmp_path: Path) -> None:
    folder = _copy_catalogue(tmp_path)
    _edit_text(folder / "landuse.yaml", '{code: "0101", name_zh: 水田', "{code: 0101, name_zh: 水田")
    message = str(_load_error(folder))
    assert "landuse.yaml" in message and "quoted string" in message and "65" in message


def test_first_level_class_must_set_flags(tmp_path: Path) -> None:
    folder = _copy_catalogue(tmp_path)
    _edit_yaml(folder / "landuse.yaml", lambda d: d["classes"][15].pop("urban_construction"))
    message = str(_load_error(folder))
    assert "landuse.yaml" in message and "land-use code '16'" in message and "'urban_construction'" in message


def test_duplicate_land_survey_code(tmp_path: Path) -> None:
    folder = _copy_catalogue(tmp_path)

    def change(data: Any) -> None:
        data["classes"][1]["codes"].append({"dlbm": "0101", "dlmc": "水田", "name_en": "Paddy"})

    _edit_yaml(folder / "land_survey_codes.yaml", change)
    message = str(_load_error(folder))
    assert "land_survey_codes.yaml" in message and "DLBM '0101'" in message and "duplicate DLBM" in message


def test_missing_file(tmp_path: Path) -> None:
    folder = _copy_catalogue(tmp_path)
    (folder / "landuse.yaml").unlink()
    message = str(_load_error(folder))
    assert "landuse.yaml" in message and "missing" in message


def test_override_directory_loads_a_copy(tmp_path: Path) -> None:
    folder = _copy_catalogue(tmp_path)
    copy = load_catalog(folder)
    assert copy.directory == folder.resolve()
    assert copy.codes == load_catalog().codes
    assert copy.fingerprint == load_catalog().fingerprint  # same bytes, same fingerprint
