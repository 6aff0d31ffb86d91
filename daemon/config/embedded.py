"""The config used when no file exists: the agents people run today.

Only what differs from the schema's defaults is written here (the watches); every
other key takes its default from ``schema.py``.
"""

from __future__ import annotations

EMBEDDED_DEFAULT = "<embedded default>"

# Node-based CLIs whose process title is "node" are matched on their command line instead.
DEFAULT_CONFIG_TOML = """
[[watch]]
name = "claude-code"
process_name = "claude"

[[watch]]
name = "codex"
process_name = "codex"

[[watch]]
name = "aider"
process_name = "aider"

[[watch]]
name = "goose"
process_name = "goose"

[[watch]]
name = "opencode"
process_name = "opencode"

[[watch]]
name = "gemini"
process_name = "gemini"

[[watch]]
name = "gemini-node"
process_name = "node"
cmdline = "(^|/)gemini( |$)|@google/gemini-cli"

[[watch]]
name = "codetether"
process_name = "codetether"

[[watch]]
name = "cursor-agent"
process_name = "cursor-agent"
"""
