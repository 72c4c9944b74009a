"""HTTP layer: a thin FastAPI shell over ``gis_platform``."""
