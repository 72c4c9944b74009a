"""Exact area units.

1 公顷 (hectare) = 10,000 m²; 1 亩 = 10,000/15 m² exactly, so 亩 = m² × 0.0015 and 1 公顷 = 15 亩.
Values stay unrounded in computation; :func:`area_figures` rounds only for output
(m² 2 decimals, 公顷 4, 亩 2).
"""

from __future__ import annotations

from fractions import Fraction

M2_PER_HECTARE = 10_000
M2_PER_MU = Fraction(10_000, 15)  # exact: 666.666… m²
MU_PER_M2 = Fraction(15, 10_000)  # 0.0015
MU_PER_HECTARE = 15


def m2_to_hectare(m2: float) -> float:
    return m2 / M2_PER_HECTARE


def m2_to_mu(m2: float) -> float:
    # multiply by 15 then divide by 10,000: exact for integral m² in binary floating point
    return m2 * 15 / 10_000


def hectare_to_m2(ha: float) -> float:
    return ha * M2_PER_HECTARE


def mu_to_m2(mu: float) -> float:
    return mu * 10_000 / 15


def area_figures(m2: float) -> dict[str, float]:
    """Rounded figures for output: ``{"m2": …, "hectare": …, "mu": …}`` from one unrounded m² value."""
    return {
        "m2": round(m2, 2),
        "hectare": round(m2_to_hectare(m2), 4),
        "mu": round(m2_to_mu(m2), 2),
    }
