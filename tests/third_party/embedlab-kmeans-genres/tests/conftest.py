pytest_plugins = ["embedlab.testing"]
