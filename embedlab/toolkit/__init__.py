"""What analysis authors use: shared options, entity selection, statistics and cyclic orders,
2-D projections, plotting (Bokeh), reloading a run's data to retrain. Built-in analyses use
exactly these; nothing here is private to them.

A module's ``__all__`` is its public surface (``options``, ``selection``, ``stats``,
``projection``, ``plotting``, ``retrain``); the plugin guide that ships with embedlab documents
every name in it with an example: ``embedlab plugins guide toolkit``.
"""
