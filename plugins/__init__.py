"""Built-in analysis plugins (installed as ``embedlab_plugins``)."""
