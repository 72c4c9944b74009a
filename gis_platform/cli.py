"""``gis-platform`` command line: database, imports, layers, demo county, server."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .cli_admin import audit_app, demo_accounts, key_app, user_app
from .cli_check import check_command
from .cli_replay import recheck_command, replay_command
from .errors import PlatformError
from .settings import REPO_ROOT, Settings, load_settings

app = typer.Typer(help="国土空间规划“一张图”平台 / territorial spatial planning one-map platform", no_args_is_help=True)
db_app = typer.Typer(help="数据库迁移 / database migrations", no_args_is_help=True)
demo_app = typer.Typer(help="示范县数据 / demo county data", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="key")
app.add_typer(audit_app, name="audit")
demo_app.command("accounts")(demo_accounts)
app.command("check")(check_command)
app.command("replay")(replay_command)
app.command("recheck")(recheck_command)

DEMO_DIR = REPO_ROOT / "data" / "demo"


def _fail(error: Exception) -> None:
    typer.echo(f"错误 error: {error}", err=True)
    raise typer.Exit(code=2)


def _engine(settings: Settings) -> Any:
    from .db import make_engine

    return make_engine(settings, pool_size=2)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """把数据库迁移到最新 / migrate the database to the newest revision."""
    from . import migrate

    try:
        moved = migrate.upgrade(load_settings(), revision)
    except PlatformError as exc:
        _fail(exc)
    for update in moved:
        typer.echo(
            f"图层 {update.layer_code} 版本 id {update.version_id}: {update.features:,} 个要素已转入测量平面"
            f" / {update.features:,} features brought into the survey plane ({update.seconds:.1f} s)"
        )
    typer.echo(f"database at revision {migrate.head_revision(load_settings()) if revision == 'head' else revision}")


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="Shapefile (.shp or .zip), GeoJSON, GeoPackage, boundary TXT or DXF")],
    layer: Annotated[str, typer.Option("--layer", "-l", help="catalogue layer code, e.g. YJJBNT")],
    crs: Annotated[str | None, typer.Option(help="CRS when the file has none, e.g. EPSG:4547")] = None,
    source_layer: Annotated[str | None, typer.Option(help="layer inside a multi-layer GeoPackage")] = None,
    if_changed: Annotated[bool, typer.Option(help="skip when the file equals the current version")] = False,
    by: Annotated[str | None, typer.Option(help="who imports (default: the OS user)")] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """导入图层文件为新版本 / import a file as a new version of a layer (all or nothing)."""
    from tqdm import tqdm

    from .catalog import load_catalog
    from .ingest.pipeline import import_file

    settings = load_settings()
    bar: Any = None

    def on_progress(done: int, total: int) -> None:
        nonlocal bar
        if not progress:
            return
        if bar is None:
            bar = tqdm(total=total, unit="要素", desc=f"写入 {layer}", file=sys.stderr)
        bar.n = done
        bar.refresh()

    try:
        catalog = load_catalog(settings.layers_dir)
        report = import_file(
            _engine(settings),
            catalog,
            settings,
            file,
            layer,
            crs=crs,
            source_layer=source_layer,
            imported_by=by,
            if_changed=if_changed,
            on_progress=on_progress,
        )
    except PlatformError as exc:
        _fail(exc)
    finally:
        if bar is not None:
            bar.close()
    typer.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) if as_json else report.render())


@app.command("layers")
def layers_command() -> None:
    """列出目录图层及当前版本 / list catalogue layers with their current versions."""
    from sqlalchemy import text

    from .catalog import load_catalog
    from .units import area_figures

    settings = load_settings()
    try:
        catalog = load_catalog(settings.layers_dir)
        with _engine(settings).connect() as conn:
            rows = {
                r.code: r
                for r in conn.execute(
                    text(
                        "SELECT l.code, v.version_no, v.feature_count, v.area_total_m2, v.imported_at, v.source_name"
                        " FROM layer l LEFT JOIN layer_version v ON v.id = l.current_version_id"
                    )
                )
            }
    except PlatformError as exc:
        _fail(exc)
    for entry in catalog.layers:
        row = rows.get(entry.code)
        if row is None or row.version_no is None:
            typer.echo(f"{entry.code:10} {entry.name_zh:20} [{entry.group}]  未导入 not imported")
            continue
        area = f"{area_figures(row.area_total_m2)['hectare']:,.4f} 公顷" if row.area_total_m2 is not None else "-"
        typer.echo(
            f"{entry.code:10} {entry.name_zh:20} [{entry.group}]  v{row.version_no}  {row.feature_count} 要素  {area}"
            f"  {row.source_name}  {row.imported_at:%Y-%m-%d %H:%M}"
        )


@app.command("changes")
def changes_command(
    layer: Annotated[str, typer.Option("--layer", "-l", help="catalogue layer code, e.g. YJJBNT")],
    base: Annotated[int | None, typer.Option(help="version number to compare from (default: the one before)")] = None,
    target: Annotated[int | None, typer.Option(help="version number to compare to (default: the current one)")] = None,
    limit: Annotated[int, typer.Option(help="changed features to list, largest area change first")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="print the comparison as JSON")] = False,
) -> None:
    """版本变更比对 / what changed between two versions of a layer (default: the current one and the one before)."""
    from .analysis.changes import compare_versions
    from .catalog import load_catalog

    settings = load_settings()
    try:
        result = compare_versions(
            _engine(settings),
            load_catalog(settings.layers_dir),
            layer,
            base=base,
            target=target,
            limit=max(limit, 1),
        )
    except PlatformError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    typer.echo(render_changes_table(result))


def render_changes_table(result: dict[str, Any]) -> str:
    summary = result["summary"]
    names = {"added": "新增 added", "removed": "删除 removed", "changed": "变更 changed", "unchanged": "未变 unchanged"}
    lines = [
        f"{result['layer']}  v{result['base']['version_no']} → v{result['target']['version_no']}"
        f"  (按 {result['key_field']} 匹配 matched by {result['key_field']})",
    ]
    for kind, name in names.items():
        part = summary[kind]
        area = part["delta"] if kind == "changed" else part["area"]
        lines.append(f"  {name:16} {part['count']:>8}  {area['m2']:>16,.2f} m²  {area['mu']:>12,.2f} 亩")
    delta = summary["total"]["delta"]
    lines.append(f"  {'净变化 net':16} {'':>8}  {delta['m2']:>16,.2f} m²  {delta['mu']:>12,.2f} 亩")
    for item in result["items"]:
        fields = f"  [{', '.join(item['changed_fields'])}]" if item["changed_fields"] else ""
        moved = "  几何变化 geometry" if item["geometry_changed"] else ""
        lines.append(f"  {item['kind']:8} {item['key']:24} {item['delta']['m2']:>14,.2f} m²{moved}{fields}")
    if result["total"] > len(result["items"]):
        lines.append(f"  … {result['total'] - len(result['items'])} more (--limit, --json)")
    return "\n".join(lines)


@demo_app.command("generate")
def demo_generate(
    out: Annotated[Path, typer.Option(help="output folder")] = DEMO_DIR,
    seed: int = 42,
    scale: Annotated[bool, typer.Option(help="benchmark county (≥100,000 farmland patches)")] = False,
) -> None:
    """生成示范县数据文件 / generate the demo county files."""
    generator = _demo_generator()
    manifest = generator.generate(out, seed=seed, scale=scale)
    typer.echo(f"demo county written: {manifest}")


@demo_app.command("load")
def demo_load(
    directory: Annotated[Path, typer.Option("--dir", help="folder with manifest.json")] = DEMO_DIR,
    progress: bool = False,
) -> None:
    """通过导入流程加载示范县 (已导入的相同文件跳过) / import the demo county through the import path."""
    from .catalog import load_catalog
    from .ingest.pipeline import import_file

    settings = load_settings()
    manifest_path = directory / "manifest.json"
    if not manifest_path.exists():
        _fail(PlatformError(f"{manifest_path}: no demo manifest; run 'gis-platform demo generate' first"))
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    engine = _engine(settings)
    try:
        catalog = load_catalog(settings.layers_dir)
        for entry in manifest["layers"]:
            report = import_file(
                engine, catalog, settings, directory / entry["file"], entry["code"], imported_by="demo", if_changed=True
            )
            typer.echo(report.render())
    except PlatformError as exc:
        _fail(exc)


def _demo_generator() -> Any:
    import importlib.util

    path = REPO_ROOT / "data" / "generate_demo_county.py"
    spec = importlib.util.spec_from_file_location("generate_demo_county", path)
    if spec is None or spec.loader is None:
        raise PlatformError(f"{path}: demo generator not found")
    module = importlib.util.module_from_spec(spec)
    sys.modules["generate_demo_county"] = module
    spec.loader.exec_module(module)
    return module


@app.command("serve")
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
) -> None:
    """启动 API 与网页地图服务 / serve the API and the web map."""
    import os
    import shutil
    import tempfile

    settings = load_settings()
    made_dir = None
    if workers > 1:
        # Prometheus counters summed over the workers: prometheus_client's multiprocess mode, in a directory
        # that must start empty (a fresh one unless the operator names one, which is then emptied)
        metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or (
            made_dir := tempfile.mkdtemp(prefix="gis-prometheus-")
        )
        os.makedirs(metrics_dir, exist_ok=True)
        for name in os.listdir(metrics_dir):
            if name.endswith(".db"):
                os.remove(os.path.join(metrics_dir, name))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        _run_uvicorn(host, port, workers, settings)
    finally:
        if made_dir:
            shutil.rmtree(made_dir, ignore_errors=True)


def _run_uvicorn(host: str, port: int, workers: int, settings: Settings) -> None:
    import uvicorn

    from api.observability import uvicorn_log_config  # after the metrics directory is set

    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level.lower(),
        log_config=uvicorn_log_config(settings.log_format, settings.log_level),
        access_log=False,  # the app writes one access line per request, with its request id and duration
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
