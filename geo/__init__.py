"""Frames, projection, sectors, border: `Geography.load(geo_dir)`; arrays in, arrays out."""
from borderfuse.geo.frames import PL_CRS, SHARED_CRS, WGS84_CRS, GeoError, from_crs, from_pl, to_shared, to_wgs84, transform
from borderfuse.geo.geography import CrossingPoint, Geography, Sector, SensorInfo
from borderfuse.geo.polar import polar_covariance, polar_to_lonlat, polar_to_shared

__all__ = [
    "PL_CRS", "SHARED_CRS", "WGS84_CRS", "GeoError", "Geography", "SensorInfo", "Sector", "CrossingPoint",
    "from_crs", "from_pl", "to_shared", "to_wgs84", "transform", "polar_covariance", "polar_to_lonlat",
    "polar_to_shared",
]
