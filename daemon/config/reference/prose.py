# ruff: noqa: E501  (the error example is one line, as printed)
"""The hand-written parts of the configuration reference (``reference.py`` puts the
tables generated from ``schema.py`` between them): what no declaration can say."""

INTRO = """\
<!-- Generated from daemon/config/schema.py and daemon/config/reference/prose.py by
     `python -m daemon.config.reference > docs/configuration.md`: edit those, then
     regenerate this file (a test compares them). -->
# Configuration reference

## The config file

The config file is looked for at `--config PATH`, then `$TELEMETRYD_CONFIG`, then the
user config dir (`~/.config/telemetryd/telemetryd.toml` on Linux), then
`/etc/telemetryd/telemetryd.toml`; with none found the embedded default is used
(`telemetryd check-config` prints it). Errors name the file, the key path and what was
expected, exit 78, and print no traceback:

```
telemetryd: config error: /etc/telemetryd/telemetryd.toml: watch[1].rss_critical: expected bytes, a size like "512MiB" or "2GB", or a percent of RAM like "25%"; got 'lots'
```

Every key is optional unless marked *required*; a key not listed below is refused, and so
is a value outside its range (inclusive), with the key's path and exit 78. A *size* is
bytes or a string like `"512MiB"`, `"2GB"` (where the default is a share of RAM, also
`"25%"` of the machine's RAM); a *duration* is seconds or a string like `"90s"`, `"5m"`,
`"24h"`, `"7d"`; a *pattern* is a regular expression, or an array of them (any may match).
An empty string (`state_dir = ""`) is an error, never a default: remove the key for the
default.

Rules between keys, checked too: a watch needs at least one selector (`process_name`,
`exe` and `interpreter_cmdline` identify a process, any one of them may match; `cmdline`,
`pid`, `pidfile` and `user` narrow what they found) and a name no other watch has; a
process belongs to the first watch (in file order) that matches it; `rss_warning` below
`rss_critical` and `cpu_warning` below `cpu_critical`; `max_decompressed_bytes` at least
`max_body_bytes` (a body sent uncompressed counts against both) and `max_inflight_bytes` at
least `max_decompressed_bytes` (one request of the largest size must fit);
`idle_spin_fallback_window` at least `idle_spin_window`; a budget needs `daily_usd`,
`monthly_usd` or `session_usd`; `[metrics] web_config_file` is an absolute path, and a
`[metrics] listen` address off loopback needs it (TLS and basic auth, docs/fleet.md) unless
`allow_unauthenticated = true` says so on purpose.

Selector patterns run on RE2 (google-re2), in time linear in the text, so no pattern can
stall a tick (`.*.*.*x` took 36 s on a 1 KB command line in Python's `re`); shapes only a
backtracking engine could run (`(a+)+$`, a back-reference, look-around) are refused with
their key. Patterns see the first 4096 characters. A config file (or a `pidfile`) must be a
regular file: a FIFO or device is refused at once, never waited on, and reads are bounded
(1 MiB for a config, 64 bytes for a pidfile).

`SIGHUP` (`systemctl reload telemetryd`) reloads the config: watches, levels, interval,
`[sentry]` (a new DSN takes effect at once), `[spool]` bounds, budgets and log settings. A
reload is all or nothing: a bad new config is logged (`config.error`) and the old one stays
in force, and a reload that fails half-way (`config.reload_failed`) puts the old one back.
The state dir and the `[otlp]`/`[metrics]` listeners change only on restart; the web config
file `[metrics] web_config_file` names is read again on every reload (new users, a renewed
certificate), but adding or removing one, or switching TLS on or off, takes a restart.

`check-config` prints the effective config as TOML that parses back to the same config for
any Unicode (an emoji in a watch name stays itself; control characters are written as
`\\u001b`-style escapes), sizes in bytes and durations in seconds, the DSN without its key.

## Keys
"""

OUTRO = """\
## Actions at a threshold

Each watch may run actions when one of its trees crosses warning (`on_warning`), crosses
critical (`on_critical`) or exits while at warning or critical (`on_exit_under_pressure`).
Default: none. Each is an array of at most 8 of:

```toml
[[watch]]
name = "claude-code"
process_name = "claude"
on_warning = [{ notify = true }]
on_critical = [
  { exec = ["/home/me/bin/save-session.sh", "--now"], timeout = "10s" },
  { signal = "SIGTERM", grace = "30s" },
]
on_exit_under_pressure = [{ exec = ["/home/me/bin/tell-me.sh"] }]
```

- `{ notify = true }`: a desktop notification (`notify-send` on Linux, `osascript` on
  macOS; for user services, which have a desktop session) naming the agent, the level, its
  RSS and, at warning, the time to critical.
- `{ exec = [...], timeout = "10s" }`: the program runs without a shell, in its own
  session; its environment is the daemon's (without `SENTRY_DSN`) plus `TELEMETRYD_WATCH`,
  `TELEMETRYD_PID` (the tree's root), `TELEMETRYD_LEVEL`, `TELEMETRYD_TRIGGER`
  (`warning`, `critical`, `exit_under_pressure`), `TELEMETRYD_RSS_BYTES` (the tree's),
  `TELEMETRYD_REPORT_ID` and `TELEMETRYD_REPORT_PATH` (the report written in the same tick:
  critical and exit under pressure; empty otherwise). At its timeout (default 10 s) its
  whole process group is SIGKILLed. Its exit status and the last 4 KiB of its output are
  logged.
- `{ signal = "SIGTERM", grace = "30s" }`: the signal goes to the tree's root (after
  checking it is still the same process, not a reused pid), so an agent can save its
  session before the kernel kills it; with `grace`, a SIGKILL follows if it still runs.

Actions run off the tick, one at a time, in a worker fed by a bounded queue (32 batches; a
full queue drops a batch with `action.dropped`): a failing or hanging action never delays
sampling. One cooldown, kept by the monitor, governs reports and actions alike: `on_warning`
runs at most once per process per `cooldown`; `on_critical` and `on_exit_under_pressure` run
exactly when their report is written (an RSS and a CPU critical report each have their own
slot), never without it (`action.suppressed` otherwise). Each action logs `action.started` and `action.finished` (with `ok`,
`exit_status`, `timed_out`, `output`, `signal` or `error`, and `seconds`), and the report
written in the same tick lists the actions it set off (`crossing.actions`).
"""
