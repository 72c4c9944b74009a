"""Territorial spatial planning "one map" (国土空间规划"一张图") platform core.

The core never imports FastAPI: the HTTP layer in ``api/`` is a thin shell over it.
"""

__version__ = "0.1.0"
