"""Finding and reading config files: the TOML in force, the embedded default, the exporter web
config.
"""
