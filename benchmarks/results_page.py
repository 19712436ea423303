"""The documentation's results page, generated from ``benchmarks/results/*.json``.

Usage: python benchmarks/results_page.py [--check]

Every record names what it is, the date, the command that made it and the machine (CPU model and its INT8/bf16
instruction sets); this writes them as one table per topic into ``docs/results/index.md``, each row linking to
the record's own page (its ``.md``, which the documentation build publishes beside it). A figure lives in its
results file; the pages link here. ``--check`` exits 1 when the page is not what the records give (the test
suite runs the same comparison).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PAGE = HERE.parent / "docs" / "results" / "index.md"

TOPICS = [  # (heading, record-name prefixes), first match wins
    ("The main command", ("main-command",)),
    ("Classification: sdc-squeezenet-mrf", ("sdc-squeezenet-mrf",)),
    ("Detection: raf-ssd and the SSD baseline", ("raf-ssd", "ssd-resnet50")),
    ("Segmentation: lsa-net and unet", ("lsa-net", "unet", "mask-resize", "train-speed-lsa-net")),
    ("Segmentation + decision: segdec-net", ("segdec-net", "train-speed-segdec-net")),
    ("Training on several processes", ("ddp-scaling",)),
    ("The line: the camera's runtime, drift, flashing", ("line-", "drift-", "flash-", "fleet-")),
]

HEAD = """# Results

Every figure edgekit reports was measured by a command and lives in one results file,
`benchmarks/results/NAME.json` (with `NAME.md` beside it for people); this page is generated from those
files by `python benchmarks/results_page.py` and a test fails when it is out of date. The machines differ
between sessions (Xeons with AMX, AMD EPYCs with AVX2 only or with AVX-512 VNNI and bf16): compare speeds
only within one record, where they were measured side by side in one run.
"""


def cell(text: object) -> str:
    """Text for one Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def machine_cells(machine: dict | None) -> tuple[str, str]:
    """The CPU model and its INT8/bf16 flags (records older than the flags say so)."""
    if not machine:
        return "not recorded", "not recorded"
    flags = machine.get("isa")
    return machine.get("processor") or "not recorded", ", ".join(flags) if flags else "not recorded"


def per_cpu_rows(record: dict) -> list[dict]:
    """The rows of a record that holds one measurement per CPU class, each with its own CPU, date and command
    (the main command's); [] for any other record."""
    rows = record.get("rows") or []
    return rows if isinstance(rows[0] if rows else None, dict) and "cpu" in rows[0] else []


def rows_of(name: str, record: dict) -> list[list[str]]:
    """One table row per measurement in a record."""
    link = f"[{name}]({name}.md)"
    per_cpu = per_cpu_rows(record)
    if per_cpu:
        return [[link, cell(r["cpu_class"] + (f" (emulated: {r['emulated']})" if r.get("emulated") else "")),
                 cell(r["cpu"]), cell(", ".join(r["isa"])), r["date"], f"`{cell(r['command'])}`"] for r in per_cpu]
    cpu, flags = machine_cells(record.get("machine"))
    return [[link, cell(record["what"]), cell(cpu), cell(flags), record["date"], f"`{cell(record['command'])}`"]]


def load() -> dict[str, dict]:
    """Every record, by name; one without what, date or command is an error naming the file."""
    records = {}
    for path in sorted(RESULTS.glob("*.json")):
        record = json.loads(path.read_text())
        dated = per_cpu_rows(record) or [record]        # where the date and the command are written
        missing = ["what"] if not record.get("what") else []
        missing += [k for k in ("date", "command") if not all(d.get(k) for d in dated)]
        if missing:
            raise SystemExit(f"{path}: no {', '.join(missing)} (every results file names what it is, its date and "
                             f"the command that made it)")
        records[path.stem] = record
    return records


def render(records: dict[str, dict] | None = None) -> str:
    """The results page's Markdown."""
    records = load() if records is None else records
    groups: dict[str, list[str]] = {title: [] for title, _ in TOPICS}
    for name in records:
        title = next((t for t, prefixes in TOPICS if name.startswith(prefixes)), None)
        if title is None:
            raise SystemExit(f"{RESULTS / name}.json: no topic on the results page for this name "
                             f"(add its prefix to TOPICS in {Path(__file__).name})")
        groups[title].append(name)
    text = [HEAD]
    for title, names in groups.items():
        if not names:
            continue
        text += [f"## {title}", "", "| record | what | CPU | INT8/bf16 flags | date | command |",
                 "|---|---|---|---|---|---|"]
        text += ["| " + " | ".join(row) + " |" for n in names for row in rows_of(n, records[n])]
        text.append("")
    return "\n".join(text)


def record_page(name: str) -> str:
    """A record's own page: its provenance from the JSON, then its Markdown report."""
    record = json.loads((RESULTS / f"{name}.json").read_text())
    report = (RESULTS / f"{name}.md").read_text()
    if per_cpu_rows(record):
        return report
    cpu, flags = machine_cells(record.get("machine"))
    head = (f"*{record['what']}* — measured {record['date']} on {cpu} ({flags}) by `{record['command']}`; "
            f"the figures: `benchmarks/results/{name}.json`.\n\n")
    title, _, rest = report.partition("\n")
    return f"{title}\n\n{head}{rest.lstrip()}" if title.startswith("# ") else head + report


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if not PAGE.is_file() or PAGE.read_text() != text:
            print(f"{PAGE}: out of date with benchmarks/results/*.json; run python benchmarks/results_page.py")
            return 1
        return 0
    PAGE.write_text(text)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
