"""Input readers: one per format, each producing a :class:`~gis_platform.ingest.source.SourceData`.

The pipeline then resolves the CRS, repairs geometries and loads them into the layer store.
"""
