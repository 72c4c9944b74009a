"""``gis-platform replay|recheck CHECK_ID``: replay a stored check exactly as recorded, or recheck it today.

The CLI acts on the server with an administrator's rights; its audit entries name the OS user (``cli:<user>``).
Exit codes: 0 done (a replay: identical), 1 a replay that is not identical or cannot be compared (earlier
method), 2 bad input (unknown check id, a missing layer version or snapshot) with a message saying which.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Annotated, Any

import typer

from .errors import PlatformError
from .settings import load_settings


def _fail(error: Exception) -> None:
    typer.echo(f"错误 error: {error}", err=True)
    raise typer.Exit(code=2)


def _context() -> tuple[Any, Any, Any, Any]:
    from .catalog import load_catalog
    from .db import make_engine
    from .rules import load_rules

    settings = load_settings()
    catalog = load_catalog(settings.layers_dir)
    return make_engine(settings, pool_size=2), catalog, load_rules(settings.layers_dir, catalog), settings


def replay_command(
    check_id: Annotated[str, typer.Argument(help="检查编号 / the check's id (uuid)")],
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as JSON")] = False,
) -> None:
    """复核：按原数据版本、目录与规则重算，结果是否一致 / replay a check exactly as recorded (stores nothing)."""
    from .audit import cli_actor
    from .replay import IDENTICAL, replay_check

    try:
        engine, catalog, rules, settings = _context()
        answer = replay_check(engine, catalog, rules, settings, check_id, actor=cli_actor())
    except PlatformError as exc:
        _fail(exc)
    typer.echo(json.dumps(answer, ensure_ascii=False, indent=2) if as_json else render_replay(answer))
    if answer["status"] != IDENTICAL:
        raise typer.Exit(code=1)


def recheck_command(
    check_id: Annotated[str, typer.Argument(help="检查编号 / the check's id (uuid)")],
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as JSON")] = False,
    by: Annotated[str | None, typer.Option(help="who rechecks (default: the OS user)")] = None,
) -> None:
    """重新核验：用今天的数据与规则重新检查并保存 / recheck with today's data and rules, stored as a new check."""
    import getpass

    from .audit import cli_actor
    from .replay import recheck_check

    actor = cli_actor()
    try:
        engine, catalog, rules, settings = _context()
        answer = recheck_check(
            engine, catalog, rules, settings, check_id, actor=actor, created_by=by or getpass.getuser()
        )
    except PlatformError as exc:
        _fail(exc)
    typer.echo(json.dumps(answer, ensure_ascii=False, indent=2) if as_json else render_recheck(answer))


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 1 or value == 0 else f"{value:g}"
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 80 else text[:77] + "…"
    return "—" if value is None else str(value)


def _width(text: str) -> int:
    """Terminal columns of ``text``: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _left(text: str, width: int) -> str:
    """``text`` padded to ``width`` columns, cut with an ellipsis (keeping a column free) when longer."""
    if _width(text) >= width:
        while _width(text) > width - 2:
            text = text[:-1]
        text += "…"
    return text + " " * max(width - _width(text), 0)


def _right(text: str, width: int) -> str:
    return " " * max(width - _width(text), 0) + text


def _signed(value: float, decimals: int) -> str:
    return f"{value:+,.{decimals}f}" if value else f"{0:.{decimals}f}"


def render_changes(changes: dict[str, Any]) -> list[str]:
    """What changed, as terminal lines (Chinese first)."""
    verdict = changes["verdict"]
    same = "（未变 unchanged）" if not verdict["changed"] else ""
    lines = [f"结论 verdict: {verdict['before']} → {verdict['after']}{same}"]
    findings = changes["findings"]
    for kind, name in (("added", "新增意见 added"), ("removed", "移除意见 removed")):
        for f in findings[kind]:
            lines.append(f"  {name}: [{f['level']}] {f['rule_id']} {f['area']['m2']:,.2f} m²")
    for f in findings["changed"]:
        before, after = f["before"], f["after"]
        lines.append(
            f"  变化意见 changed: {f['rule_id']} ({', '.join(f['fields'])}): [{before['level']}]"
            f" {before['area']['m2']:,.2f} m² → [{after['level']}] {after['area']['m2']:,.2f} m²"
        )
    widths = (26, 16, 16, 15, 12, 11)
    head = ("图层 layer", "前 before m²", "后 after m²", "Δ m²", "Δ 公顷", "Δ 亩")
    lines.append(_left(head[0], widths[0]) + "".join(_right(h, w) for h, w in zip(head[1:], widths[1:], strict=True)))
    for layer in changes["layers"]:
        delta = layer["delta"]
        cells = (
            f"{layer['before']['m2']:,.2f}" if layer["before"] else "—",
            f"{layer['after']['m2']:,.2f}" if layer["after"] else "—",
            _signed(delta["m2"], 2),
            _signed(delta["hectare"], 4),
            _signed(delta["mu"], 2),
        )
        name = f"{layer['code']} {layer['name_zh'] or ''}"
        lines.append(_left(name, widths[0]) + "".join(_right(c, w) for c, w in zip(cells, widths[1:], strict=True)))
    for version in changes["versions"]:
        change = f"{_version(version['before'])} → {_version(version['after'])}"
        lines.append(f"数据版本 version {version['code']}: {change}")
    if changes["catalog_changed"] or changes["rules_changed"]:
        what = [n for n, c in (("图层目录 catalogue", changes["catalog_changed"]),
                               ("规则 rules", changes["rules_changed"])) if c]  # fmt: skip
        lines.append(f"已更新 changed: {', '.join(what)}")
    return lines


def _version(version: dict[str, Any] | None) -> str:
    if not version:
        return "—"
    return f"v{version['version_no']} (id {version['id']})" if version.get("version_no") else f"id {version['id']}"


def render_replay(answer: dict[str, Any]) -> str:
    check = answer["check"]
    lines = [
        f"复核 replay  检查 check {check['id']}  {check['created_at'][:19]}  方法 method {answer['method'] or '—'}",
        answer["message"],
    ]
    if answer["status"] == "different":
        lines.append("（前：保存的结果；后：按原样重算 / before: as stored; after: recomputed as recorded）")
        lines += render_changes(answer["changes"])
        lines.append(f"字段差异 differences ({answer['differences_total']}):")
        for item in answer["differences"][:40]:
            lines.append(f"  {item['path']}: {_value(item['before'])} → {_value(item['after'])}")
        if answer["differences_total"] > 40:
            lines.append(f"  … {answer['differences_total'] - 40} more (--json)")
    return "\n".join(lines)


def render_recheck(answer: dict[str, Any]) -> str:
    original, check = answer["original"], answer["check"]
    lines = [
        f"重新核验 recheck  原检查 {original['id']} ({original['created_at'][:19]})"
        f" → 新检查 new check {check['id']} ({check['created_at'][:19]})",
        *render_changes(answer["changes"]),
    ]
    return "\n".join(lines)
