"""What redaction costs and how well its shape test tells credentials from names.

Figures, all measured in this run:
- false positives of ``looks_random`` over non-secrets: the model ids genai-prices knows,
  every argument of the recorded agent command lines (tests/fixtures/process_shapes.json),
  file and directory names under /usr, and CamelCase identifiers joined from the Python
  standard library's class and function names (seeded);
- its detection rate over random base62, base64url and base64 tokens of 20-64 characters;
- the cost of redacting OTLP records on their way into the store (``redacted_record``),
  per record, with names that repeat (as agents send them) and with every name new, against
  what the store's append of the same records costs (the baseline: the writer thread's
  work per record before redaction was added).

Usage: .venv/bin/python benchmarks/bench_redaction.py [--quick]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import string
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from genai_prices.data_snapshot import get_snapshot

from crash_reports.event.secret_shapes import looks_random
from daemon.agents.decoding.privacy import redacted_record
from daemon.agents.decoding.records import Agent, Record, TokenUsage
from daemon.agents.store.event_store import EventStore

REPO = Path(__file__).resolve().parent.parent


def non_secrets(max_files: int, identifiers: int) -> dict[str, set[str]]:
    """Names people wrote, by where they come from."""
    shapes = json.loads((REPO / "tests" / "fixtures" / "process_shapes.json").read_text())
    args = {arg for shape in shapes["shapes"] + shapes["negatives"]
            for line in (shape["cmdline"], (shape.get("parent") or {}).get("cmdline", []))
            for arg in line}
    files: set[str] = set()
    for root in ("/usr/lib", "/usr/share", "/usr/include"):
        for _, dirs, names in os.walk(root):
            files.update(dirs)
            files.update(names)
            if len(files) >= max_files:
                break
    names: set[str] = set()
    stdlib = Path(os.__file__).parent
    for path in sorted(stdlib.glob("*.py")):
        try:
            tree = ast.parse(path.read_text())
        except (SyntaxError, UnicodeDecodeError):
            continue
        names.update(node.name for node in ast.walk(tree)
                     if isinstance(node, ast.ClassDef | ast.FunctionDef))
    rng = random.Random(1)
    pool = sorted(names)
    joined = set()
    for _ in range(identifiers):
        parts = [part + (str(rng.randint(0, 2025)) if rng.random() < 0.5 else "")
                 for part in rng.sample(pool, rng.randint(1, 3))]
        joined.add(rng.choice(["", "-", "_", "."]).join(parts))
    models = {model.id for provider in get_snapshot().providers for model in provider.models}
    return {"model ids": models, "agent command-line arguments": args,
            "file names under /usr": files, "stdlib identifiers": joined}


def detection(samples: int) -> None:
    """Share of random tokens the shape test catches, by alphabet and length."""
    rng = random.Random(2)
    alphabets = {"base62": string.ascii_letters + string.digits,
                 "base64url": string.ascii_letters + string.digits + "-_",
                 "base64": string.ascii_letters + string.digits + "+/"}
    lengths = (20, 24, 32, 40, 64)
    print(f"  {'alphabet':<10}" + "".join(f"{n:>8}" for n in lengths))
    for name, alphabet in alphabets.items():
        rates = [sum(looks_random("".join(rng.choice(alphabet) for _ in range(length)))
                     for _ in range(samples)) / samples for length in lengths]
        print(f"  {name:<10}" + "".join(f"{rate:>8.1%}" for rate in rates))


def records(count: int, distinct: int) -> list[Record]:
    """Token records as an agent sends them, cycling over ``distinct`` name sets."""
    out: list[Record] = []
    for index in range(count):
        n = index % distinct
        agent = Agent(f"agent-{n % 50}", f"inst-{n}", f"0b8f3c4e-2a51-4d07-9b36-{n:012d}", n)
        out.append(TokenUsage(0.0, agent, agent.session_id, f"claude-opus-4-{n % 20}",
                              "input", 100))
    return out


def redaction_us(batch: list[Record]) -> float:
    """Microseconds per record for ``redacted_record``."""
    started = time.perf_counter()
    for record in batch:
        redacted_record(record)
    return (time.perf_counter() - started) / len(batch) * 1e6


def append_us(batch: list[Record]) -> float:
    """Microseconds per record for the store's append, in the writer's batches of 5,000."""
    with tempfile.TemporaryDirectory() as folder:
        store = EventStore(Path(folder) / "events.db", 30.0, 1024**3)
        started = time.perf_counter()
        for start in range(0, len(batch), 5000):
            store.append(batch[start : start + 5000])
        elapsed = time.perf_counter() - started
        store.close()
    return elapsed / len(batch) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller corpora (CI smoke run)")
    options = parser.parse_args()
    max_files, identifiers, samples, count = ((20_000, 2_000, 300, 20_000) if options.quick
                                              else (400_000, 20_000, 3_000, 200_000))
    print("looks_random false positives (non-secrets that would be redacted):")
    total = found = 0
    for source, texts in non_secrets(max_files, identifiers).items():
        hits = sorted(text for text in texts if looks_random(text))
        total, found = total + len(texts), found + len(hits)
        print(f"  {source:<30} {len(hits):>6} of {len(texts):>7}  {hits[:3]}")
    print(f"  {'false positives':<30} {found:>6} of {total:>7}")
    print("looks_random detection of random tokens:")
    detection(samples)
    print(f"redacting OTLP records ({count:,} records):")
    for label, distinct in (("names repeat (100 sets)", 100), ("every name new", count)):
        batch = records(count, distinct)
        baseline = append_us(batch)
        cost = redaction_us(batch)
        print(f"  {label:<24} redaction {cost:6.2f} us per record, store append "
              f"{baseline:6.2f} us: +{cost / baseline:.0%} on the writer thread")


if __name__ == "__main__":
    main()
