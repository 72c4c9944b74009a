"""Comparing two check documents: field by field at output rounding (a replay), and what changed (a recheck).

**Identical** (:func:`differences` is empty) means: every field of the result is equal once each number is taken
at its output precision — areas in m² to 2 decimals, 公顷 to 4, 亩 to 2, shares as stored (6 decimals), any other
number (a bounding box, the buffer, the 微小压盖 threshold, a parcel property) to 8 decimals — so the verdict, every
finding (rule, level, area, message, citation, 微小压盖 flag), every layer's overlap, category and feature figures,
the 地类统计, the township split, the layer versions and the catalogue and rule fingerprints are the same. Left
out: the record's own metadata (id, time, who, source) and the overlap and parcel drawings (``geometry``), whose
vertices a GEOS upgrade may start at another corner; their areas are compared.
"""

from __future__ import annotations

from typing import Any

from .units import area_figures

#: The record's metadata, not part of the result
RECORD_FIELDS = frozenset({"id", "created_at", "created_by", "source"})
#: Output precision of the rounded figures (decimals); any other number is compared to OTHER_DECIMALS
DECIMALS = {"m2": 2, "hectare": 4, "mu": 2, "share": 6}
OTHER_DECIMALS = 8
#: Lists whose items are matched by a key, so a diff names the item ("findings[farmland.construction]")
LIST_KEYS = {
    "layers": "code",
    "findings": "rule_id",
    "features": "feature_id",
    "townships": "code",
    "classes": "dlbm",
}
MAX_DIFFERENCES = 500
UNITS = ("m2", "hectare", "mu")


def _number(value: Any, key: str | None) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return round(float(value), DECIMALS.get(key or "", OTHER_DECIMALS)) + 0.0  # + 0.0: -0.0 equals 0.0


def _keyed(items: list[Any], key: str | None) -> dict[str, Any] | None:
    """The items by their key when every item has a distinct one, else None (compared by position)."""
    if key is None or not all(isinstance(i, dict) and i.get(key) is not None for i in items):
        return None
    keyed = {str(i[key]): i for i in items}
    return keyed if len(keyed) == len(items) else None


def _walk(before: Any, after: Any, path: str, key: str | None, out: list[dict[str, Any]]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for name in [*before, *(k for k in after if k not in before)]:
            if name == "geometry" or (not path and name in RECORD_FIELDS):
                continue
            sub = f"{path}.{name}" if path else name
            if name not in after:
                out.append({"path": sub, "before": before[name], "after": None})
            elif name not in before:
                out.append({"path": sub, "before": None, "after": after[name]})
            else:
                _walk(before[name], after[name], sub, name, out)
        return
    if isinstance(before, list) and isinstance(after, list):
        item_key = LIST_KEYS.get(key or "")
        left, right = _keyed(before, item_key), _keyed(after, item_key)
        if left is None or right is None:
            left = {str(i): v for i, v in enumerate(before)}
            right = {str(i): v for i, v in enumerate(after)}
        for name in [*left, *(k for k in right if k not in left)]:
            sub = f"{path}[{name}]"
            if name not in right:
                out.append({"path": sub, "before": left[name], "after": None})
            elif name not in left:
                out.append({"path": sub, "before": None, "after": right[name]})
            else:
                _walk(left[name], right[name], sub, None, out)
        return
    if _number(before, key) != _number(after, key):
        out.append({"path": path, "before": before, "after": after})


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Every field where two check documents differ at output rounding: ``{"path", "before", "after"}`` each
    (``before``/``after`` null where the field or list item is missing on that side), in document order."""
    out: list[dict[str, Any]] = []
    _walk(before, after, "", None, out)
    return out


def _figures(entry: dict[str, Any] | None) -> dict[str, float] | None:
    return dict(entry["overlap"]) if entry else None


def area_delta(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, float]:
    """``after − before`` in each unit, from the figures as shown (so before + delta = after as displayed)."""
    zero = area_figures(0.0)
    b, a = before or zero, after or zero
    return {unit: round(a[unit] - b[unit], DECIMALS[unit]) + 0.0 for unit in UNITS}


FINDING_FIELDS = ("level", "layer_code", "area", "minor", "citation", "message_zh")


def _finding_changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> dict[str, Any]:
    old = {f["rule_id"]: f for f in before}
    new = {f["rule_id"]: f for f in after}
    changed = []
    for rule_id in [r for r in old if r in new]:
        fields = [name for name in FINDING_FIELDS if differences({name: old[rule_id].get(name)},
                                                                 {name: new[rule_id].get(name)})]  # fmt: skip
        if fields:
            changed.append({"rule_id": rule_id, "fields": fields, "before": old[rule_id], "after": new[rule_id]})
    return {
        "added": [f for r, f in new.items() if r not in old],
        "removed": [f for r, f in old.items() if r not in new],
        "changed": changed,
    }


def _versions(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Layer code → {id, version_no} of every version the check read."""
    found = {code: {"id": vid, "version_no": None} for code, vid in (document.get("data_versions") or {}).items()}
    for layer in document.get("layers") or []:
        version = layer.get("version") or {}
        found[layer["code"]] = {"id": version.get("id"), "version_no": version.get("version_no")}
    return found


def summarize_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What changed between two checks of one parcel, for a reader: the verdict, findings added, removed and
    changed (by rule id), every layer's overlap before and after with its change in m², 公顷 and 亩, the layer
    versions that changed, and whether the catalogue, the rules or the overlay method changed."""
    layers_before = {entry["code"]: entry for entry in before.get("layers") or []}
    layers_after = {entry["code"]: entry for entry in after.get("layers") or []}
    layers = []
    for code in [*layers_before, *(c for c in layers_after if c not in layers_before)]:
        old, new = layers_before.get(code), layers_after.get(code)
        named = new or old or {}
        delta = area_delta(_figures(old), _figures(new))
        layers.append(
            {
                "code": code,
                "name_zh": named.get("name_zh"),
                "name_en": named.get("name_en"),
                "before": _figures(old),
                "after": _figures(new),
                "delta": delta,
                "changed": old is None or new is None or any(delta[u] != 0 for u in UNITS),
            }
        )
    versions_before, versions_after = _versions(before), _versions(after)
    versions = [
        {"code": code, "before": versions_before.get(code), "after": versions_after.get(code)}
        for code in [*versions_before, *(c for c in versions_after if c not in versions_before)]
        if (versions_before.get(code) or {}).get("id") != (versions_after.get(code) or {}).get("id")
    ]
    parcel_before = (before.get("parcel") or {}).get("area")
    parcel_after = (after.get("parcel") or {}).get("area")
    return {
        "verdict": {
            "before": before.get("verdict"),
            "after": after.get("verdict"),
            "changed": before.get("verdict") != after.get("verdict"),
        },
        "findings": _finding_changes(before.get("findings") or [], after.get("findings") or []),
        "layers": layers,
        "parcel_area": {
            "before": parcel_before,
            "after": parcel_after,
            "delta": area_delta(parcel_before, parcel_after),
        },
        "versions": versions,
        "catalog_changed": before.get("catalog_fingerprint") != after.get("catalog_fingerprint"),
        "rules_changed": before.get("rules_fingerprint") != after.get("rules_fingerprint"),
        "method": {"before": before.get("overlay_method"), "after": after.get("overlay_method")},
    }
