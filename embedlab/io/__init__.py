"""File formats and files on disk: atomic writes, checksummed downloads and safe extraction, vector import/export formats. Nothing here knows a dataset."""
