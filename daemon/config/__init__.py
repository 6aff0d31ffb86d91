"""Configuration: ``schema`` (shape and every default), ``parse`` (TOML to ``Config`` with
key-path errors), ``load`` (finding and reading the file), ``render`` (check-config output),
``embedded`` (the config used when there is no file), ``quantities`` (sizes and durations).

Nothing is re-exported here: import a name from the module that owns it.
"""
