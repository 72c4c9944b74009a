"""Finding a CJK font for PDF reports, through fontconfig.

The PDF must carry its own Chinese glyphs (an embedded font) so it prints the same on any machine.
WeasyPrint selects fonts through fontconfig, so the report asks fontconfig which installed families cover
Simplified Chinese (``fc-list :lang=zh-cn``), prefers the families below in order, and names the chosen
family in the PDF's stylesheet.  A font file can also be given explicitly (a TrueType/OpenType file);
it is then loaded with ``@font-face``.  When nothing is found the error names the Debian package to install.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gis_platform.errors import ConfigurationError

#: Families tried first, best first; any other family fontconfig lists for zh-cn comes after them.
PREFERRED_FAMILIES: Final[tuple[str, ...]] = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "Noto Serif CJK SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "AR PL UMing CN",
    "Droid Sans Fallback",
)
FONT_PACKAGE_HINT: Final[str] = "install the Debian package fonts-noto-cjk (or fonts-wqy-zenhei)"


@dataclass(frozen=True)
class CJKFont:
    """The font a PDF report uses for Chinese text."""

    family: str
    """Family name as fontconfig knows it (or the name given to an explicit file in ``@font-face``)."""
    file: Path
    """The font file (a collection such as ``NotoSansCJK-Regular.ttc`` holds several faces)."""
    explicit: bool = False
    """True when the file was given explicitly and must be loaded with ``@font-face``."""


def _fc_list() -> list[tuple[str, Path]]:
    """(first family name, file) for every installed face fontconfig says covers Simplified Chinese."""
    binary = shutil.which("fc-list")
    if binary is None:
        raise ConfigurationError(
            f"no CJK font for PDF reports: fontconfig's fc-list is not installed; install the Debian package "
            f"fontconfig and {FONT_PACKAGE_HINT.removeprefix('install ')}"
        )
    try:
        listing = subprocess.run(
            [binary, "--format", "%{family[0]}\t%{file}\n", ":lang=zh-cn"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigurationError(f"no CJK font for PDF reports: fc-list failed ({exc}); {FONT_PACKAGE_HINT}") from exc
    faces: list[tuple[str, Path]] = []
    for line in listing.splitlines():
        family, _, file = line.partition("\t")
        if family.strip() and file.strip():
            faces.append((family.strip(), Path(file.strip())))
    return faces


@functools.lru_cache(maxsize=1)
def _discover() -> CJKFont:
    faces = _fc_list()
    if not faces:
        raise ConfigurationError(
            f"no CJK font for PDF reports: fontconfig lists no font covering Chinese (fc-list :lang=zh-cn); "
            f"{FONT_PACKAGE_HINT}"
        )
    by_family: dict[str, Path] = {}
    for family, file in sorted(faces, key=lambda face: ("Bold" in face[1].name, str(face[1]))):
        by_family.setdefault(family, file)
    for family in PREFERRED_FAMILIES:
        if family in by_family:
            return CJKFont(family, by_family[family])
    family = sorted(by_family)[0]
    return CJKFont(family, by_family[family])


def find_cjk_font(font_file: Path | None = None) -> CJKFont:
    """The CJK font for PDF reports: ``font_file`` when given, else the best family fontconfig offers.

    Raises :class:`~gis_platform.errors.ConfigurationError` naming the package to install when no font
    covering Chinese is installed, or naming the file when an explicit ``font_file`` does not exist.
    """
    if font_file is not None:
        path = Path(font_file).expanduser()
        if not path.is_file():
            raise ConfigurationError(f"report font file {str(path)!r} does not exist; {FONT_PACKAGE_HINT}")
        if path.suffix.lower() not in {".ttf", ".otf", ".ttc", ".otc", ".woff", ".woff2"}:
            raise ConfigurationError(f"report font file {str(path)!r} is not a TrueType/OpenType font")
        return CJKFont("ReportCJK", path.resolve(), explicit=True)
    return _discover()


def clear_font_cache() -> None:
    """Forget the discovered font (after installing or removing fonts)."""
    _discover.cache_clear()
