from fractions import Fraction

import pytest

from gis_platform import units


def test_million_square_metres_is_100_hectares_and_1500_mu_exactly() -> None:
    assert units.m2_to_hectare(1_000_000) == 100
    assert units.m2_to_mu(1_000_000) == 1500
    assert units.area_figures(1_000_000) == {"m2": 1_000_000.0, "hectare": 100.0, "mu": 1500.0}


def test_one_hectare_is_fifteen_mu_and_one_mu_is_ten_thousand_fifteenths() -> None:
    assert units.m2_to_mu(10_000) == 15
    assert Fraction(10_000, 15) == units.M2_PER_MU
    assert units.mu_to_m2(15) == pytest.approx(10_000, abs=1e-9)
    # the common bug: dividing by 666.67 gives a visibly wrong figure
    assert units.m2_to_mu(1_000_000) != 1_000_000 / 666.67


@pytest.mark.parametrize("m2", [0.0, 1.0, 666.6666666666666, 12_345.678, 9_876_543.21])
def test_round_trip_m2_mu(m2: float) -> None:
    assert units.mu_to_m2(units.m2_to_mu(m2)) == pytest.approx(m2, rel=1e-12, abs=1e-9)


def test_rounding_happens_only_at_output() -> None:
    # 0.004 m² three times: rounding each first would give 0.0; the total of unrounded values 0.01
    parts = [0.004, 0.004, 0.004]
    assert sum(units.area_figures(p)["m2"] for p in parts) == 0.0
    assert units.area_figures(sum(parts))["m2"] == 0.01
    assert units.area_figures(2_000.0) == {"m2": 2000.0, "hectare": 0.2, "mu": 3.0}
