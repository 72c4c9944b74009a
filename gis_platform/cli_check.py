"""``gis-platform check FILE``: check the parcels of a file, each with its own use and name from the file."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from .errors import PlatformError
from .settings import load_settings

USE_FIELD_HELP = (
    "field with each parcel's use: a field name, auto (the usual names of layers/parcel_fields.yaml: 地块用途 DKYT,"
    " YDYHFLDM … then 地类编码 DLBM) or none (every parcel gets --use)"
)


def _fail(error: Exception) -> None:
    typer.echo(f"错误 error: {error}", err=True)
    raise typer.Exit(code=2)


def check_command(
    file: Annotated[Path, typer.Argument(help="parcel file: boundary TXT, GeoJSON, zipped Shapefile, GeoPackage, DXF")],
    use: Annotated[
        str | None, typer.Option("--use", help="用地用海 code for parcels whose file gives no use, e.g. 0701")
    ] = None,
    use_field: Annotated[str, typer.Option("--use-field", help=USE_FIELD_HELP)] = "auto",
    use_classification: Annotated[
        str | None,
        typer.Option(
            "--use-classification",
            help="read the use field as land_use (用地用海 code or name) or land_survey (三调 code or name, through"
            " layers/land_use_crosswalk.yaml); default: as the usual names list the field",
        ),
    ] = None,
    label_field: Annotated[
        str, typer.Option("--label-field", help="field with each parcel's name: a field name, auto or none")
    ] = "auto",
    inspect: Annotated[
        bool, typer.Option("--inspect", help="only show the file's fields and each parcel's use; check nothing")
    ] = False,
    crs: Annotated[str | None, typer.Option(help="CRS when the file has none, e.g. EPSG:4547")] = None,
    project_number: Annotated[str | None, typer.Option(help="project number (项目编号)")] = None,
    output: Annotated[str, typer.Option("--format", help="json or table")] = "table",
    by: Annotated[str | None, typer.Option(help="who checks (default: the OS user)")] = None,
) -> None:
    """检查地块与红线的关系 / check the parcels of a file against the red lines (stored like API checks)."""
    from .analysis.parcel_use import FieldChoice
    from .analysis.upload import check_file_parcels, inspect_parcel_file, read_parcel_file
    from .catalog import load_catalog
    from .db import make_engine
    from .parcel_fields import load_parcel_fields
    from .rules import load_rules

    if output not in ("json", "table"):
        _fail(PlatformError(f"--format {output!r}: use json or table"))
    settings = load_settings()
    choice = FieldChoice(use_field, use_classification, label_field, use)
    try:
        catalog = load_catalog(settings.layers_dir)
        fields = load_parcel_fields(catalog, settings.layers_dir)
        parcel_file = read_parcel_file(file, settings, catalog.survey_plane, crs=crs)
        if inspect:
            inspection = inspect_parcel_file(parcel_file, choice, fields)
            text = json.dumps(inspection, ensure_ascii=False, indent=2)
            typer.echo(text if output == "json" else render_inspection(inspection))
            return
        rules = load_rules(settings.layers_dir, catalog)
        engine = make_engine(settings, pool_size=2)
        results = check_file_parcels(
            engine,
            catalog,
            rules,
            settings,
            parcel_file,
            choice,
            fields,
            project_number=project_number,
            created_by=by or getpass.getuser(),
            source=f"cli:{file.name}",
        )
    except PlatformError as exc:
        _fail(exc)
    if output == "json":
        typer.echo(json.dumps(results if len(results) > 1 else results[0], ensure_ascii=False, indent=2))
        return
    for result in results:
        typer.echo(render_check_table(result))


def _use_text(land_use: dict[str, Any] | None) -> str:
    if not land_use:
        return "未提供 none (需补充用途)"
    source = land_use.get("source") or {}
    where = (
        f"  ← {source['field_label_zh']} {source['field']} “{source['value']}” ({source['classification_zh']})"
        if source.get("from") == "file"
        else "  ← --use"
    )
    return f"{land_use['code']} {land_use['name_zh']}{where}"


def render_check_table(result: dict[str, Any]) -> str:
    """A plain-text summary of one check for the terminal."""
    parcel = result["parcel"]
    lines = [
        f"检查 check {result['id']}  {result['created_at'][:19]}",
        f"地块 parcel {parcel.get('label') or ''}  面积 {parcel['area']['m2']:,.2f} m²"
        f" = {parcel['area']['hectare']:,.4f} 公顷 = {parcel['area']['mu']:,.2f} 亩  ({result['area_model']['name']})",
        f"拟用地类型 land use: {_use_text(result.get('land_use'))}",
        f"结论 verdict: {result['verdict']}",
        f"{'图层 layer':<24}{'版本':>6}{'压盖 m²':>16}{'公顷':>12}{'亩':>12}{'比例':>9}{'要素':>6}",
    ]
    for layer in result["layers"]:
        overlap = layer["overlap"]
        minor = " 微小压盖" if layer["minor"] else ""
        lines.append(
            f"{layer['code'] + ' ' + layer['name_zh']:<24}{'v' + str(layer['version']['version_no']):>6}"
            f"{overlap['m2']:>16,.2f}{overlap['hectare']:>12,.4f}{overlap['mu']:>12,.2f}{layer['share']:>9.2%}"
            f"{layer['feature_count']:>6}{minor}"
        )
    for finding in result["findings"]:
        lines.append(f"[{finding['level']}] {finding['rule_id']}: {finding['message_zh']}")
        lines.append(f"    依据: {finding['citation']}")
    if result.get("missing_layers"):
        lines.append(f"未导入的图层 layers not imported: {', '.join(result['missing_layers'])}")
    return "\n".join(lines)


def render_inspection(inspection: dict[str, Any]) -> str:
    """What ``--inspect`` prints: the file, its fields with samples, the chosen fields, each parcel's use."""
    use, label = inspection["use_field"], inspection["label_field"]
    lines = [
        f"文件 file {inspection['file']} [{inspection['format']}] {inspection['encoding'] or ''} "
        f"{inspection['source_crs']}  地块 parcels: {inspection['count']}",
        "字段 fields:",
    ]
    for field in inspection["fields"]:
        samples = "、".join(field["samples"]) or "—"
        lines.append(f"  {field['name']:<16} {field['label_zh']:<12} 有值 filled {field['filled']:>4}  例 {samples}")
    lines.append(
        f"用途字段 use field: {use['chosen'] or 'none'} ({use['classification_zh'] or '—'})"
        f"  自动识别 detected: {use['detected'] or '—'}"
    )
    lines.append(f"名称字段 name field: {label['chosen'] or 'none'}  自动识别 detected: {label['detected'] or '—'}")
    for parcel in inspection["parcels"]:
        if parcel["problem"]:
            outcome = f"✗ {parcel['problem']['message_zh']}"
        elif parcel["land_use"]:
            lu = parcel["land_use"]
            outcome = f"{lu['code']} {lu['name_zh']}" + ("（--use）" if parcel["from"] == "given" else "")
        else:
            outcome = "未提供用途 → 需补充用途"
        lines.append(f"  {parcel['number']:>4} {parcel['label'] or '—':<16} {parcel['value'] or '—':<12} → {outcome}")
    return "\n".join(lines)
