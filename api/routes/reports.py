"""Check reports for filing: 建设项目用地合规性审查报告 as HTML and PDF."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine

from gis_platform.accounts import REPORTS_READ, Principal
from gis_platform.audit import AuditEntry, record_now
from gis_platform.checks import get_check
from gis_platform.reports import render_check_html, render_check_pdf

from ..deps import CatalogDep, EngineDep
from ..security import request_actor, requires

router = APIRouter(prefix="/api/v1/checks", tags=["reports"])

_UNSAFE = re.compile(r"[^0-9A-Za-z._\-\u4e00-\u9fff]+")


def report_filename(check: dict[str, Any], extension: str) -> str:
    """合规性审查报告-<project number or check id>.<extension>, with characters unsafe in a filename replaced."""
    number = (check.get("project") or {}).get("number") or check.get("id") or "report"
    stem = _UNSAFE.sub("_", str(number)).strip("._")[:120] or "report"
    return f"合规性审查报告-{stem}.{extension}"


def content_disposition(disposition: str, filename: str, check_id: str) -> str:
    """RFC 6266 header: an ASCII ``filename`` fallback and the UTF-8 name as RFC 5987 ``filename*``."""
    fallback = f"check-report-{_UNSAFE.sub('_', check_id)}.{filename.rsplit('.', 1)[-1]}"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.get(
    "/{check_id}/report.html",
    response_class=HTMLResponse,
    summary="审查报告（HTML）/ the check report as a self-contained HTML page",
)
def check_report_html(
    check_id: str,
    request: Request,
    engine: EngineDep,
    catalog: CatalogDep,
    principal: Annotated[Principal, requires(REPORTS_READ)],
) -> HTMLResponse:
    check, headers = _report(engine, check_id, request, principal, "html", "inline")
    return HTMLResponse(render_check_html(check, catalog), headers=headers)


@router.get(
    "/{check_id}/report.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
    summary="审查报告（PDF，嵌入中文字体）/ the check report as PDF with an embedded CJK font",
)
def check_report_pdf(
    check_id: str,
    request: Request,
    engine: EngineDep,
    catalog: CatalogDep,
    principal: Annotated[Principal, requires(REPORTS_READ)],
) -> Response:
    check, headers = _report(engine, check_id, request, principal, "pdf", "attachment")
    return Response(render_check_pdf(check, catalog), media_type="application/pdf", headers=headers)


def _report(
    engine: Engine, check_id: str, request: Request, principal: Principal, fmt: str, disposition: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """The stored check and the response headers of its report; the download is written to the audit trail."""
    check = get_check(engine, check_id)
    entry = AuditEntry(
        request_actor(request, principal), "report.download", f"check:{check['id']}", details={"format": fmt}
    )
    record_now(engine, entry)
    headers = {"Content-Disposition": content_disposition(disposition, report_filename(check, fmt), check["id"])}
    return check, headers
