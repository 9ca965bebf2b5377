"""Distances (rules/geo.py): one Earth radius for every distance in the project."""

import pytest

from rules.geo import EARTH_RADIUS_KM, haversine_km


def test_the_same_point_is_zero_km_away():
    assert haversine_km(34.5, 111.2, 34.5, 111.2) == 0.0


def test_one_degree_of_latitude_is_the_earth_radius_times_pi_over_180():
    assert haversine_km(30.0, 110.0, 31.0, 110.0) == pytest.approx(
        EARTH_RADIUS_KM * 3.14159265 / 180
    )
    assert haversine_km(30.0, 110.0, 31.0, 110.0) == pytest.approx(111.195, abs=0.001)


def test_a_degree_of_longitude_shrinks_with_the_cosine_of_the_latitude():
    at_equator = haversine_km(0.0, 110.0, 0.0, 111.0)
    at_sixty = haversine_km(60.0, 110.0, 60.0, 111.0)
    assert at_sixty == pytest.approx(at_equator / 2, rel=0.002)


def test_the_distance_is_symmetric():
    assert haversine_km(36.1, 111.5, 35.2, 112.9) == haversine_km(35.2, 112.9, 36.1, 111.5)
