"""Opening a DXF: the entity count of its text before ezdxf parses it, strict reading, the code page.

ezdxf parses the whole drawing before any entity can be looked at (a 40 MB DXF of 200,000 polylines took 43 s
and 540 MB), so an upload's entities are first counted in the file's own text: the ENTITIES section's records
(group code 0), the vertices of old-style POLYLINEs (VERTEX records) not counted as entities. A binary DXF is not
counted here; the sandbox's limits bound it.
"""

from __future__ import annotations

import codecs
import mmap
import re
from pathlib import Path

import ezdxf
from ezdxf.lldxf.const import DXF2007, DXFError, DXFStructureError

from gis_platform.errors import InputFileError

from .encoding import decode_text
from .limits import ReadLimits

_BINARY_DXF = b"AutoCAD Binary DXF"
_ENTITIES_START = re.compile(rb"(?:^|\n)[ \t]*2\r?\nENTITIES\r?\n")
_SECTION_END = re.compile(rb"\n[ \t]*0\r?\nENDSEC\r?\n?")
#: A group code 0 line and its record type: a value line "0" is always followed by a code line (digits), so a
#: "0" line followed by a name starting with a letter is a record.
_RECORD = re.compile(rb"\n[ \t]*0\r?\n([A-Za-z_][A-Za-z0-9_]*)")
_NOT_ENTITIES = (b"VERTEX", b"SEQEND", b"ENDSEC")


def count_entities(path: Path) -> int | None:
    """Records in the ENTITIES section of an ASCII DXF (a POLYLINE's VERTEX and SEQEND records not counted);
    ``None`` for a binary DXF."""
    with open(path, "rb") as fh:
        if fh.read(len(_BINARY_DXF)) == _BINARY_DXF:
            return None
        fh.seek(0, 2)
        if fh.tell() == 0:
            return 0
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            start = _ENTITIES_START.search(data)
            if start is None:
                return 0
            end = _SECTION_END.search(data, start.end())
            stop = end.start() + 1 if end is not None else len(data)
            return sum(
                1
                for record in _RECORD.finditer(data, start.end() - 1, stop)
                if record.group(1).upper() not in _NOT_ENTITIES
            )


def check_entity_count(path: Path, limits: ReadLimits | None) -> None:
    """Refuse a DXF whose ENTITIES section holds more records than ``limits`` allow, before it is parsed."""
    if limits is None or limits.max_dxf_entities is None:
        return
    count = count_entities(path)
    if count is not None:
        limits.check_dxf_entities(count, path.name)


_GB_CODECS = ("gbk", "gb2312", "gb18030", "cp936")


def read_document(path: Path, encoding: str | None = None) -> ezdxf.document.Drawing:
    """Open a DXF strictly: a truncated or structurally broken file is an error, not a partial import."""
    source = path.name
    if not path.is_file():
        raise InputFileError(f"{source}: file not found", file=source)
    try:
        return ezdxf.readfile(path, encoding=encoding)
    except DXFStructureError as exc:
        raise InputFileError(f"{source}: corrupt or truncated DXF file ({exc})", file=source) from exc
    except OSError as exc:
        raise InputFileError(f"{source}: cannot read as a DXF file ({exc})", file=source) from exc
    except (DXFError, ValueError, UnicodeError, EOFError, IndexError, KeyError, TypeError) as exc:
        raise InputFileError(f"{source}: not a readable DXF file ({exc})", file=source) from exc


def read_with_detected_encoding(path: Path) -> tuple[ezdxf.document.Drawing, list[str]]:
    """Read a DXF; for pre-2007 files check the declared code page against the layer names' bytes.

    DXF before R2007 stores text in the code page named by ``$DWGCODEPAGE``, and Chinese CAD output
    often declares ``ANSI_1252`` while writing GBK: read naively, 永久基本农田 becomes ``ÓÀ¾Ã»ù±¾Å©Ìï``.
    The layer names' original bytes are run through :func:`decode_text`; when they are GB18030 (or
    UTF-8) but the declared code page is something else, the file is read again in that encoding.
    """
    doc = read_document(path)
    if doc.dxfversion >= DXF2007:  # UTF-8 by definition
        return doc, []
    declared = codecs.lookup(doc.encoding).name
    names = [str(layer.dxf.name) for layer in doc.layers]
    try:
        raw = "\n".join(names).encode(declared, errors="surrogateescape")
    except UnicodeEncodeError:  # names came from \U+XXXX escapes: already proper Unicode
        return doc, []
    if raw.isascii():
        return doc, []
    _, detected = decode_text(raw, source=f"{path.name} (layer names)")
    codec = {"GB18030": "gb18030", "UTF-8": "utf-8"}.get(detected)
    already = declared == codec or (codec == "gb18030" and declared in _GB_CODECS)
    if codec is None or already:
        return doc, []
    note = f"$DWGCODEPAGE declares {doc.encoding} but the layer names are {detected}: text read as {detected}"
    return read_document(path, encoding=codec), [note]
