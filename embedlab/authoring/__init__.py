"""For plugin authors: the scaffold (``embedlab plugins new``), its templates, and the test helpers (``embedlab.testing``)."""
