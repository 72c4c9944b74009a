"""Text encodings of survey and GIS files: UTF-8 (with or without BOM) or GBK/GB18030.

Files from bureaus and surveyors are very often GBK.  GB18030 is a superset of GBK and GB2312, so
Chinese legacy text is always decoded as ``gb18030``.  The rules, in order:

1. a byte-order mark decides (UTF-8 BOM, UTF-16 BOMs);
2. text that is strictly valid UTF-8 is UTF-8 — GBK text is practically never valid UTF-8, whereas
   UTF-8 Chinese often *also* decodes as (garbled) GB18030, so the GB18030 decoding alone proves nothing;
3. otherwise text that decodes cleanly as GB18030 is GB18030;
4. otherwise the encoding is undetermined: an :class:`EncodingDetectionError`, never mojibake.

"Cleanly" also rejects decodings that contain control characters, private-use characters or the
replacement character.  Only when both decodings are clean *and* the UTF-8 one looks implausible
(no CJK at all but letters of other scripts, the signature of GBK bytes that happen to be valid UTF-8)
is charset-normalizer asked as a tie-breaker.
"""

from __future__ import annotations

import codecs
import re
import struct

from charset_normalizer import from_bytes

from gis_platform.errors import EncodingDetectionError

__all__ = ["dbf_encoding", "decode_text"]

_UTF8_BOM = codecs.BOM_UTF8
_UTF16_BOMS = ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))

# C0 controls except tab, LF, VT, FF, CR; DEL and C1 controls; private use; replacement character.
_UNCLEAN = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ue000-\uf8ff\ufffd\U000f0000-\U0010ffff]")


def _is_cjk_like(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x2E80 <= cp <= 0x9FFF  # radicals, CJK punctuation, kana, CJK unified ideographs
        or 0xF900 <= cp <= 0xFAFF  # compatibility ideographs
        or 0xFE30 <= cp <= 0xFE4F  # CJK compatibility forms
        or 0xFF00 <= cp <= 0xFFEF  # full-width forms (，：（）)
        or 0x20000 <= cp <= 0x3FFFF  # CJK extensions B+
    )


def _is_common_symbol(ch: str) -> bool:
    cp = ord(ch)
    return 0x00A0 <= cp <= 0x00FF or 0x2000 <= cp <= 0x2BFF  # Latin-1 symbols (° ² ×), punctuation, ① ‰ …


def _utf8_implausible(text: str) -> bool:
    """True when a UTF-8 decoding holds no CJK but letters of other scripts (Greek, Cyrillic, Arabic …)."""
    non_ascii = [ch for ch in text if ord(ch) > 0x7F]
    if not non_ascii or any(_is_cjk_like(ch) for ch in non_ascii):
        return False
    return any(not _is_common_symbol(ch) for ch in non_ascii)


def _clean(text: str) -> bool:
    return _UNCLEAN.search(text.rstrip("\x1a")) is None  # a trailing DOS end-of-file mark is harmless


def _try_decode(data: bytes, codec: str) -> tuple[str | None, str]:
    """(text, "") when *data* decodes strictly and cleanly, else (None, reason)."""
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        return None, f"byte {exc.start} (0x{data[exc.start : exc.start + 4].hex()}) is not valid {codec}"
    match = _UNCLEAN.search(text.rstrip("\x1a"))
    if match is not None:
        return None, f"decoding as {codec} gives control/private-use character U+{ord(match.group()):04X}"
    return text, ""


def _tie_break(data: bytes) -> str | None:
    """charset-normalizer's choice between UTF-8 and GB18030, ``"utf-8"``/``"gb18030"`` or ``None``."""
    best = from_bytes(data, cp_isolation=["utf_8", "gb18030"]).best()
    if best is None:
        return None
    name = codecs.lookup(best.encoding).name
    if name == "utf-8":
        return "utf-8"
    if name == "gb18030":
        return "gb18030"
    return None


def decode_text(data: bytes, *, source: str) -> tuple[str, str]:
    """Decode a text file of unknown encoding.

    Parameters
    ----------
    data : bytes
        The whole file.
    source : str
        File name, for error messages.

    Returns
    -------
    tuple of (str, str)
        The text (without BOM) and the encoding name: ``"UTF-8"``, ``"UTF-8-SIG"`` (UTF-8 with BOM),
        ``"UTF-16"`` (with BOM) or ``"GB18030"`` (GBK, GB2312 and GB18030 files).

    Raises
    ------
    EncodingDetectionError
        Naming *source*, when the bytes are neither clean UTF-8 nor clean GB18030 (or both, and
        even the tie-breaker cannot decide).
    """
    if data.startswith(_UTF8_BOM):
        text, reason = _try_decode(data[len(_UTF8_BOM) :], "utf-8")
        if text is None:
            raise EncodingDetectionError(
                f"{source}: starts with a UTF-8 byte-order mark but is not valid UTF-8 ({reason})", source=source
            )
        return text, "UTF-8-SIG"
    for bom, codec in _UTF16_BOMS:
        if data.startswith(bom):
            text, reason = _try_decode(data[len(bom) :], codec)
            if text is None:
                raise EncodingDetectionError(
                    f"{source}: starts with a UTF-16 byte-order mark but is not valid UTF-16 ({reason})",
                    source=source,
                )
            return text, "UTF-16"

    utf8, utf8_reason = _try_decode(data, "utf-8")
    gb, gb_reason = _try_decode(data, "gb18030")
    if utf8 is not None and gb is not None and _utf8_implausible(utf8):
        choice = _tie_break(data)
        if choice is None:
            raise EncodingDetectionError(
                f"{source}: cannot decide between UTF-8 and GBK/GB18030; save the file as UTF-8", source=source
            )
        return (utf8, "UTF-8") if choice == "utf-8" else (gb, "GB18030")
    if utf8 is not None:
        return utf8, "UTF-8"
    if gb is not None:
        return gb, "GB18030"
    raise EncodingDetectionError(
        f"{source}: text encoding undetermined, neither UTF-8 ({utf8_reason}) nor GBK/GB18030 ({gb_reason}); "
        "save the file as UTF-8 or GBK",
        source=source,
    )


# ----------------------------------------------------------------------------------------------
# DBF (Shapefile attributes)
# ----------------------------------------------------------------------------------------------

_GBK_NAMES = {
    "936",
    "CP936",
    "MS936",
    "WINDOWS936",
    "ANSI936",
    "GBK",
    "GB2312",
    "GB231280",
    "EUCCN",
    "GB18030",
    "54936",
    "CP54936",
    "CHINESE",
    "ZHCN",
    "HZGB2312",
}
_UTF8_NAMES = {"UTF8", "65001", "CP65001", "ANSI65001", "UTF8SIG", "UNICODE"}
# DBF language driver ids meaning GBK / code page 936 (0x4D as written by ArcGIS, 0x7A by dBASE).
_GBK_LDIDS = {0x4D, 0x7A}


def _cpg_codec(cpg_text: str) -> str:
    raw = cpg_text.replace("\ufeff", "").replace("\x00", "").strip()
    key = re.sub(r"[\s_\-.]", "", raw).upper()
    if key in _GBK_NAMES:
        return "gb18030"
    if key in _UTF8_NAMES:
        return "utf-8"
    candidates = [raw]
    number = re.fullmatch(r"(?:ANSI|CP|WINDOWS|OEM)?(\d+)", key)
    if number:
        candidates.insert(0, f"cp{number.group(1)}")
    for candidate in candidates:
        try:
            name = codecs.lookup(candidate).name
        except LookupError:
            continue
        if name in ("gbk", "gb2312", "gb18030", "hz"):
            return "gb18030"
        return name
    raise EncodingDetectionError(
        f".cpg names the code page {raw!r}, which is not a known encoding (expected e.g. 936, GBK, UTF-8)",
        cpg=raw,
    )


def _dbf_strings(sample: bytes) -> tuple[int | None, list[bytes]]:
    """(language driver id, character field values) of a DBF's leading bytes; raw sample if not a DBF."""
    if len(sample) < 33:
        return None, [sample]
    header_len, record_len = struct.unpack_from("<HH", sample, 8)
    if header_len < 33 or record_len < 1 or header_len > len(sample) + 1:
        return None, [sample]
    fields: list[tuple[int, int]] = []  # (offset in record, length) of character fields
    offset = 1  # deletion flag
    pos = 32
    while pos + 32 <= min(header_len, len(sample)) and sample[pos] != 0x0D:
        ftype = chr(sample[pos + 11])
        length = sample[pos + 16]
        if ftype == "C":
            fields.append((offset, length))
        offset += length
        pos += 32
    if offset != record_len:  # not the structure we expect: look at every byte after the header instead
        return sample[29], [sample[header_len:]]
    values: list[bytes] = []
    start = header_len
    while start < len(sample) and sample[start] != 0x1A:
        record = sample[start : start + record_len]
        for field_offset, length in fields:
            value = record[field_offset : field_offset + length].rstrip(b" \x00")
            if value:
                values.append(value)
        start += record_len
    return sample[29], values


def _decodes_allowing_cut(value: bytes, codec: str) -> str | None:
    """Strict decoding, tolerating a multi-byte character cut off by the field width at the very end."""
    try:
        return value.decode(codec)
    except UnicodeDecodeError as exc:
        if exc.start >= len(value) - 3 and exc.reason in ("unexpected end of data", "incomplete multibyte sequence"):
            try:
                return value[: exc.start].decode(codec)
            except UnicodeDecodeError:
                return None
        return None


def _all_decode(values: list[bytes], codec: str) -> str | None:
    texts = []
    for value in values:
        text = _decodes_allowing_cut(value, codec)
        if text is None or not _clean(text):
            return None
        texts.append(text)
    return "\n".join(texts)


def dbf_encoding(cpg_text: str | None, dbf_sample: bytes) -> str:
    """Python codec for a Shapefile's DBF text.

    Parameters
    ----------
    cpg_text : str or None
        Contents of the ``.cpg`` file (``936``, ``GBK``, ``GB2312``, ``CP936``, ``ANSI 936``, ``UTF-8``,
        ``65001`` …), ``None`` when there is none.
    dbf_sample : bytes
        The leading bytes of the ``.dbf`` (header and records; the more records, the safer the
        decision).  If it is not a parseable DBF header, all of it is treated as text bytes.

    Returns
    -------
    str
        A Python codec name: ``"utf-8"``, ``"gb18030"`` (for any GBK/936/GB2312 declaration or
        detection) or, for other declared code pages, e.g. ``"cp1252"``.

    Raises
    ------
    EncodingDetectionError
        When the .cpg names an unknown code page, when the attribute text contradicts the .cpg, or,
        without a .cpg, when the text is neither UTF-8 nor GB18030 or cannot be decided.
    """
    ldid, values = _dbf_strings(dbf_sample)
    non_ascii = [v for v in values if any(b > 0x7F for b in v)]
    if cpg_text is not None and cpg_text.strip("\ufeff\x00 \r\n\t"):
        codec = _cpg_codec(cpg_text)
        if non_ascii and _all_decode(non_ascii, codec) is None:
            raise EncodingDetectionError(
                f".cpg declares {cpg_text.strip()!r} ({codec}) but the DBF attribute text is not valid {codec}",
                cpg=cpg_text.strip(),
            )
        return codec

    ldid_gbk = ldid in _GBK_LDIDS
    if not non_ascii:
        return "gb18030" if ldid_gbk else "utf-8"  # ASCII: both decode it identically
    utf8 = _all_decode(non_ascii, "utf-8")
    gb = _all_decode(non_ascii, "gb18030")
    if utf8 is not None and (gb is None or not _utf8_implausible(utf8)):
        return "utf-8"
    if gb is not None and utf8 is None:
        return "gb18030"
    if gb is not None and utf8 is not None:  # both decode; the UTF-8 reading looks like mojibake
        if ldid_gbk:
            return "gb18030"
        choice = _tie_break(b"\n".join(non_ascii))
        if choice is not None:
            return choice
        raise EncodingDetectionError(
            "DBF without .cpg: cannot decide between UTF-8 and GBK/GB18030; add a .cpg file (936 or UTF-8)"
        )
    raise EncodingDetectionError(
        "DBF without .cpg: attribute text is neither UTF-8 nor GBK/GB18030; add a .cpg file naming its code page"
    )
