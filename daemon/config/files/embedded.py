"""The config used when no file exists: the agents people run today.

Only what differs from the schema's defaults is written here (the watches); every
other key takes its default from ``schema.py``.

One watch per agent, found in every install layout recorded in
tests/fixtures/process_shapes.json (native installers, npm, pnpm, npx, Homebrew, uv/pipx
venvs, node wrappers with native children, background helpers, app servers): by name,
by the executable's install path (a native Claude Code started by its version-named
path is called ``2.1.197``), or, for an interpreter (node, python, uv, ``npm exec``), by
the script in its command line. Wrappers, native children and MCP servers under an
agent count in that agent's tree; ``mcp-server`` catches servers whose agent is not
watched. A process belongs to the first watch that matches it.
"""

from __future__ import annotations

EMBEDDED_DEFAULT = "<embedded default>"

DEFAULT_CONFIG_TOML = r"""
[[watch]]
name = "claude-code"
process_name = ["claude", "claude.exe"]
exe = [
    '/claude/versions/[^/]+$',
    '/@anthropic-ai/claude-code[^/]*/(bin/claude\.exe|claude)$',
    '/Caskroom/claude-code[^/]*/[^/]+/claude$',
    '/native-binary/claude(\.exe)?$',
    '/claude_agent_sdk/_bundled/claude$',
]
interpreter_cmdline = [
    '@anthropic-ai/claude-code( |/|$)',
    'bin/claude( |$)',
    '\.claude/local/',
]

[[watch]]
name = "codex"
process_name = ["codex", "codex-code-mode-host", "codex-code-mode"]
exe = [
    '/vendor/[^/]+/(bin/codex|codex/codex|bin/codex-code-mode-host)(\.exe)?$',
    '/\.codex/packages/[^/]+/releases/[^/]+/bin/codex$',
    '/Caskroom/codex/[^/]+/codex-[^/]+$',
    '/Cellar/codex/[^/]+/bin/codex$',
    '/openai\.chatgpt-[^/]+/bin/[^/]+/codex(\.exe)?$',
]
interpreter_cmdline = [
    '@openai/codex/bin/codex\.js',
    '@openai\+codex@',
    'bin/codex( |$)',
]

[[watch]]
name = "gemini"
process_name = ["gemini"]
interpreter_cmdline = [
    '@google/gemini-cli( |/|$)',
    '@google\+gemini-cli@',
    'bin/gemini( |$)',
]

[[watch]]
name = "aider"
process_name = ["aider"]
interpreter_cmdline = [
    'bin/aider( |$)',
    '-m aider( |$)',
    '--from aider-chat( |$)',
    '/aider-chat/bin/',
]

[[watch]]
name = "goose"
process_name = ["goose", "goosed"]
exe = [
    '/goose/resources/bin/goosed$',
    '/Goose\.app/Contents/',
]
exclude_exe = [
    '/go/bin/goose$',
    '/Cellar/goose/',
]
exclude_cmdline = [
    '^goose -(dir|table|allow-missing|s|v) ',
    '^goose (postgres|mysql|sqlite3|sqlite|mssql|redshift|tidb) ',
    '^goose (clickhouse|vertica|ydb|turso|starrocks) ',
]

[[watch]]
name = "opencode"
process_name = ["opencode", "opencode.exe", ".opencode"]
exe = [
    '/opencode-ai/bin/(opencode\.exe|\.opencode)$',
    '/opencode-(linux|darwin|windows)-[a-z0-9-]+/bin/opencode(\.exe)?$',
    '/\.opencode/bin/opencode$',
]
interpreter_cmdline = 'bin/opencode( |$)'

[[watch]]
name = "cursor-agent"
process_name = ["cursor-agent"]
exe = '/cursor-agent/versions/[^/]+/(node|cursor-agent)$'
interpreter_cmdline = '/cursor-agent/versions/[^/ ]+/index\.js( |$)'

[[watch]]
name = "codetether"
process_name = "codetether"

[[watch]]
name = "mcp-server"
cmdline = [
    '@modelcontextprotocol/server-',
    'mcp-server-[a-z0-9]',
    'mcp_server_[a-z0-9]',
    '[a-z0-9]-mcp-server',
    '-mcp( |$)',
]
"""
