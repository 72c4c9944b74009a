"""Text and DBF encoding detection: UTF-8 (with/without BOM) vs GBK/GB18030, never mojibake."""

from __future__ import annotations

import codecs
import struct
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from gis_platform.errors import EncodingDetectionError, InputFileError
from gis_platform.ingest.encoding import dbf_encoding, decode_text

SAMPLE = "[属性描述]\r\n坐标系=2000国家大地坐标系\r\n计量单位=米\r\n地块名称=城关镇“东门”安置区（一期）\r\n"


def test_utf8_without_bom() -> None:
    assert decode_text(SAMPLE.encode("utf-8"), source="a.txt") == (SAMPLE, "UTF-8")


def test_utf8_with_bom_strips_bom() -> None:
    text, encoding = decode_text(codecs.BOM_UTF8 + SAMPLE.encode("utf-8"), source="a.txt")
    assert (text, encoding) == (SAMPLE, "UTF-8-SIG")
    assert not text.startswith("\ufeff")


@pytest.mark.parametrize("codec", ["gbk", "gb2312", "gb18030", "cp936"])
def test_gbk_family_decodes_as_gb18030(codec: str) -> None:
    assert decode_text(SAMPLE.encode(codec), source="a.txt") == (SAMPLE, "GB18030")


def test_gb18030_only_characters() -> None:
    text = "地块名称=𠀀㐀䶮\n"  # CJK extension characters GBK cannot encode
    with pytest.raises(UnicodeEncodeError):
        text.encode("gbk")
    assert decode_text(text.encode("gb18030"), source="a.txt") == (text, "GB18030")


def test_short_gbk_text() -> None:
    # 联通: the classic short GBK byte string; GBK bytes of Chinese are not valid UTF-8
    assert decode_text("联通".encode("gbk"), source="a.txt") == ("联通", "GB18030")


def test_utf8_with_latin_symbols_stays_utf8() -> None:
    # "°" and "²" are valid 2-byte UTF-8; their bytes also decode as GB18030 hanzi, which must not win
    text = "带号=114°\n面积(m²)=12.5\n"
    assert decode_text(text.encode("utf-8"), source="a.txt") == (text, "UTF-8")


def test_ascii_is_utf8() -> None:
    assert decode_text(b"J1,1,3385000.0,38528000.0\n", source="a.txt") == ("J1,1,3385000.0,38528000.0\n", "UTF-8")


def test_utf16_with_bom() -> None:
    assert decode_text(codecs.BOM_UTF16_LE + SAMPLE.encode("utf-16-le"), source="a.txt") == (SAMPLE, "UTF-16")


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x80\xff\xfe\xfd garbage",  # neither UTF-8 nor GB18030
        b"PK\x03\x04\x00\x00\x00binary",  # NUL bytes: binary, not text
        codecs.BOM_UTF8 + "坐标系".encode("gbk"),  # BOM claims UTF-8, body is GBK
    ],
)
def test_undecidable_text_names_the_file(data: bytes) -> None:
    with pytest.raises(EncodingDetectionError) as info:
        decode_text(data, source="界址点.txt")
    assert "界址点.txt" in str(info.value)
    assert isinstance(info.value, InputFileError)


# ----------------------------------------------------------------------------------------------
# DBF
# ----------------------------------------------------------------------------------------------


def _dbf(values: list[bytes], *, width: int = 20, ldid: int = 0) -> bytes:
    """A minimal dBASE III file with one character field NAME (written by hand, independent of the reader)."""
    header_len = 32 + 32 + 1
    record_len = 1 + width
    header = struct.pack("<B3BIHH", 0x03, 124, 1, 1, len(values), header_len, record_len)
    header += b"\x00" * (29 - len(header)) + bytes([ldid]) + b"\x00\x00"
    descriptor = b"NAME".ljust(11, b"\x00") + b"C" + b"\x00" * 4 + bytes([width, 0]) + b"\x00" * 14
    records = b"".join(b" " + v[:width].ljust(width, b" ") for v in values)
    return header + descriptor + b"\r" + records + b"\x1a"


@pytest.mark.parametrize(
    ("cpg", "codec"),
    [
        ("936", "gb18030"), ("GBK", "gb18030"), ("gb2312", "gb18030"), ("CP936", "gb18030"), ("ANSI 936", "gb18030"),
        ("GB18030", "gb18030"), ("UTF-8", "utf-8"), ("utf8\r\n", "utf-8"), ("65001", "utf-8"), ("\ufeffUTF-8", "utf-8"),
        ("1252", "cp1252"), ("ANSI 1252", "cp1252"), ("ISO-8859-1", "iso8859-1"),
    ],
)
def test_cpg_names(cpg: str, codec: str) -> None:
    assert dbf_encoding(cpg, _dbf([b"ABC"])) == codec


def test_unknown_cpg() -> None:
    with pytest.raises(EncodingDetectionError, match="no-such-codepage"):
        dbf_encoding("no-such-codepage", _dbf([b"ABC"]))


def test_cpg_contradicted_by_the_data() -> None:
    with pytest.raises(EncodingDetectionError, match="UTF-8"):
        dbf_encoding("UTF-8", _dbf(["水田".encode("gbk"), "旱地".encode("gbk")]))


def test_no_cpg_gbk_strings() -> None:
    assert dbf_encoding(None, _dbf(["水田".encode("gbk"), "城镇村庄".encode("gbk")])) == "gb18030"


def test_no_cpg_utf8_strings() -> None:
    assert dbf_encoding(None, _dbf(["水田".encode(), "城镇村庄".encode()])) == "utf-8"


def test_no_cpg_ascii_uses_language_driver() -> None:
    assert dbf_encoding(None, _dbf([b"ABC"], ldid=0x4D)) == "gb18030"
    assert dbf_encoding(None, _dbf([b"ABC"], ldid=0x00)) == "utf-8"
    assert dbf_encoding("", _dbf([b"ABC"], ldid=0x00)) == "utf-8"  # an empty .cpg declares nothing


def test_no_cpg_character_cut_at_field_width() -> None:
    gbk = "永久基本农田保护区".encode("gbk")  # 18 bytes
    utf8 = "永久基本农田".encode()  # 18 bytes
    assert dbf_encoding(None, _dbf([gbk], width=17)) == "gb18030"  # last character cut after its lead byte
    assert dbf_encoding(None, _dbf([utf8], width=17)) == "utf-8"  # last character cut after two of three bytes


def test_no_cpg_undecidable() -> None:
    with pytest.raises(EncodingDetectionError, match="cpg"):
        dbf_encoding(None, _dbf([b"\x80\xff\xfe\x80abc"]))


def test_dbf_truncated_sample_is_fine() -> None:
    data = _dbf(["水田".encode("gbk")] * 50)
    assert dbf_encoding(None, data[: len(data) // 2 + 7]) == "gb18030"


@pytest.mark.parametrize(("write_encoding", "expected"), [("GBK", "gb18030"), ("UTF-8", "utf-8")])
def test_gdal_written_dbf_without_cpg(tmp_path: Path, write_encoding: str, expected: str) -> None:
    """A DBF written by GDAL (an independent writer), its .cpg deleted as ArcGIS users often do."""
    frame = gpd.GeoDataFrame(
        {"DLMC": ["水田", "旱地", "农村宅基地"], "BSM": ["1", "2", "3"]},
        geometry=[shapely.Point(114.1, 30.5)] * 3,
        crs=4490,
    )
    frame.to_file(tmp_path / "dltb.shp", encoding=write_encoding, engine="pyogrio")
    (tmp_path / "dltb.cpg").unlink()
    data = (tmp_path / "dltb.dbf").read_bytes()
    codec = dbf_encoding(None, data)
    assert codec == expected
    assert "农村宅基地".encode(codec) in data
