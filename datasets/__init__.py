"""Built-in dataset plugins (installed as ``embedlab_datasets``) and reference tables."""
