"""Built-in trainers (registered through the ``embedlab`` entry-point group like any plugin)."""
