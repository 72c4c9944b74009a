"""What the server runs in the sandbox (:mod:`gis_platform.sandbox`): every read of an untrusted file.

- :func:`~gis_platform.analysis.upload.read_parcel_file` — the parcels of an upload to check or inspect;
- :func:`~gis_platform.analysis.batch.read_batch_file` — the features of a batch file;
- :func:`import_layer_file` — a layer import over HTTP, read, prepared and written by the worker itself.

Their results come back through :data:`RESULT_TYPES`, the only classes the server unpickles from a worker.
"""

from __future__ import annotations

from pathlib import Path

from .analysis.batch import BatchFile, read_batch_file
from .analysis.parcel import Parcel
from .analysis.upload import ParcelFile, read_parcel_file
from .audit import Actor
from .catalog import load_catalog
from .db import make_engine
from .errors import ConfigurationError
from .ingest.pipeline import ImportReport, import_file
from .settings import Settings

__all__ = ["RESULT_TYPES", "import_layer_file", "read_batch_file", "read_parcel_file"]

#: (module, name) of every global a worker's reply may name: the result classes and shapely's WKB constructor.
RESULT_TYPES = frozenset(
    {
        (ParcelFile.__module__, ParcelFile.__qualname__),
        (Parcel.__module__, Parcel.__qualname__),
        (BatchFile.__module__, BatchFile.__qualname__),
        (ImportReport.__module__, ImportReport.__qualname__),
        ("shapely.io", "from_wkb"),
    }
)


def import_layer_file(
    settings: Settings,
    catalog_fingerprint: str,
    path: Path,
    layer_code: str,
    *,
    crs: str | None,
    source_layer: str | None,
    imported_by: str,
    actor: Actor,
) -> ImportReport:
    """:func:`~gis_platform.ingest.pipeline.import_file` in the worker, with its own database connection: the file
    is read, prepared and COPYed here, in one transaction a killed worker rolls back."""
    catalog = load_catalog(settings.layers_dir)
    if catalog.fingerprint != catalog_fingerprint:
        raise ConfigurationError(
            "图层目录文件已变更，请重启服务 / the layer catalogue changed on disk since the service started; restart it"
        )
    engine = make_engine(settings, pool_size=1)
    try:
        return import_file(
            engine,
            catalog,
            settings,
            path,
            layer_code,
            crs=crs,
            source_layer=source_layer,
            imported_by=imported_by,
            actor=actor,
        )
    finally:
        engine.dispose()
