"""Spatial analysis: parcel input, red-line overlay, land-survey statistics, conflicts."""
