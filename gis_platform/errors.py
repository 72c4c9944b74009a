"""Domain errors.

Every error the core raises is a subclass of :class:`PlatformError`.  The API layer maps
error classes to HTTP statuses in one table; the CLI prints ``str(error)`` and exits non-zero.
Messages name the bad value and, where it helps, the allowed ones.
"""

from __future__ import annotations

from typing import Any


class PlatformError(Exception):
    """Base class of every error the platform raises on purpose."""

    code = "platform_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **({"details": self.details} if self.details else {})}


class ConfigurationError(PlatformError):
    code = "configuration_error"


class CatalogError(ConfigurationError):
    """A catalogue file under ``layers/`` is malformed (names file, entry and problem)."""

    code = "catalog_error"


class UnknownLayerError(PlatformError):
    code = "unknown_layer"


class UnknownLandUseError(PlatformError):
    code = "unknown_land_use"


class InputFileError(PlatformError):
    """An input file cannot be used: unreadable, truncated, unsupported, inconsistent."""

    code = "input_file_error"


class UnsupportedFormatError(InputFileError):
    code = "unsupported_format"


class UnsafeArchiveError(InputFileError):
    """A zip with absolute or ``..`` member paths, too many members, or an absurd size."""

    code = "unsafe_archive"


class EncodingDetectionError(InputFileError):
    code = "encoding_undetermined"


class CRSError(InputFileError):
    """Missing, unsupported or inconsistent coordinate reference system."""

    code = "crs_error"


class GeometryError(InputFileError):
    """Geometry unusable for the target layer (wrong or mixed types, nothing valid left)."""

    code = "geometry_error"


class DatabaseError(PlatformError):
    code = "database_error"


class ParcelError(PlatformError):
    """A parcel submitted for a check cannot be checked (empty, non-finite, too large, outside the county…)."""

    code = "invalid_parcel"


class NotFoundError(PlatformError):
    code = "not_found"


class LandUseValueError(ParcelError):
    """Parcels of a file whose use value cannot be read as a 用地用海 class (``details.problems``: one entry per
    parcel, naming it, the field, the value, the classification it was read in and why)."""

    code = "land_use_unmapped"


class FieldNotFoundError(ParcelError):
    """A field named for the parcels' use or name is not in the file (``details.fields`` lists the file's)."""

    code = "field_not_found"


class FileLimitError(InputFileError):
    """A file holds more than a request may take (features, vertices, DXF entities): refused while it is read,
    before the rest of it is parsed. ``details`` name the limit and, where known, the count."""

    code = "file_too_complex"


class ProcessingLimitError(InputFileError):
    """Reading a file in the sandbox went past its CPU time, wall time or memory limit: the worker process was
    stopped and its files removed. ``details``: ``limit`` (cpu_time, wall_time or memory) and its value."""

    code = "processing_limit_exceeded"


class SandboxBusyError(PlatformError):
    """Every sandbox worker of this server process is busy and none came free in time: retry shortly."""

    code = "sandbox_busy"


class TimeBudgetError(PlatformError):
    """A request went past its time budget (``details.budget_s``); its transaction was cancelled, nothing stored."""

    code = "time_budget_exceeded"
