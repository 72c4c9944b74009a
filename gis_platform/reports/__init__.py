"""Reports built from stored check documents (pure core: no web framework)."""

from .check_report import REPORT_TITLE, render_check_html, render_check_pdf
from .fonts import CJKFont, find_cjk_font

__all__ = ["REPORT_TITLE", "CJKFont", "find_cjk_font", "render_check_html", "render_check_pdf"]
