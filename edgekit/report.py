"""Plain tables: Markdown for reports, rich for the terminal. Same rows feed both."""
from __future__ import annotations

from typing import Any, Sequence

from rich.console import Console
from rich.table import Table


def fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "pass" if value else "FAIL"
    if isinstance(value, float):
        return f"{value:.2f}"
    return "—" if value is None else str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], console: Console | None = None,
                whole: Sequence[str] = ("name", "artifact", "stage", "backend", "recipe", "target")) -> None:
    """A terminal table that never cuts a cell: the ``whole`` columns (names a user types) keep their
    full width and never wrap; the others wrap, and fold a word longer than their width."""
    cells = [[fmt(v) for v in row] for row in rows]
    table = Table(title=title, title_justify="left")
    for i, h in enumerate(headers):
        if h in whole:
            width = max([len(h), *(len(r[i]) for r in cells)])
            table.add_column(h, no_wrap=True, min_width=width)
        else:
            table.add_column(h, overflow="fold")
    for row in cells:
        table.add_row(*row)
    (console or Console()).print(table)


def summary_rows(results: dict) -> tuple[list[str], list[list[Any]]]:
    key, column = results["metric"]["key"], results["metric"]["column"]
    headers = ["artifact", "computes in", column, "drop vs FP32", "p50 ms (b=1)", "fps (b=1)"]
    rows = [[r["artifact"], r.get("compute") or r["precision"], r[key], r.get("drop_vs_fp32"), r["speed"]["p50_ms"],
             r["speed"]["throughput_fps"]] for r in results["rows"]]
    return headers, rows


def gate_rows(results: dict) -> tuple[list[str], list[list[Any]]]:
    """The gates: each one's outcome (pass, warn: too few images to show it within, FAIL) and the paired evidence
    behind it (the drop's interval, the answers that changed, what one image weighs)."""
    return (["artifact", "gate", "value", "result", "evidence"],
            [[g["artifact"], g["gate"], g["value"], _outcome(g), g.get("detail", "")] for g in results["gates"]])


def _outcome(gate: dict) -> str:
    return {"pass": "pass", "warn": "warn", "fail": "FAIL"}[gate.get("status", "pass" if gate["pass"] else "fail")]


def prune_table(table: list[dict], metric: str) -> tuple[list[str], list[list]]:
    """Pruning's before/after table's headers and rows (the build's table and the validation report)."""
    int8 = any("latency_int8_ms" in r for r in table)
    headers = ["model", "params", "MACs", "FP32 ms (b=1)", *(["INT8 ms (b=1)"] if int8 else []), metric]
    rows = [[r["model"], f"{r['params']:,}", f"{r['macs']:,}", r["latency_ms"],
             *([r["latency_int8_ms"]] if int8 else []), round(r["metric"], 2)] for r in table]
    return headers, rows


def validation_markdown(recipe, results: dict, task_sections: list[str]) -> str:
    """The report's frame (data, summary, gates, paper, robustness, notes) around the task's sections."""
    column = results["metric"]["column"]
    out = [f"# Validation: {recipe.name}", ""]
    d = results["data"]
    out += [f"Data: `{d['root']}` — {d['images']} images "
            f"({'built-in generated data' if results['builtin_data'] else 'user data'}); "
            f"{results['threads']} CPU threads.", "",
            f"Test split: {d['test']} images, chosen by {d['split']} "
            f"({', '.join(f'{c} {n}' for c, n in d['test_per_class'].items())})"
            + (f"; split id `{d['split_id']}` (builds with the same id scored the same images)" if d.get("split_id") else "")
            + ".", ""]
    out += ["## Summary", "", markdown_table(*summary_rows(results)), ""]
    pr = results.get("pruning")
    if pr:
        out += [f"Pruning: {pr['ratio']:.0%} of the channels by {pr['importance']} importance, MACs kept "
                f"{pr['macs_kept']:.1%}, parameters kept {pr['params_kept']:.1%}; {column} (PyTorch, test split) "
                f"unpruned {pr['unpruned']:.2f}, right after pruning {pr['after_pruning']:.2f}, after "
                f"{pr['finetune_epochs']} fine-tuning epochs {pr['fine_tuned']:.2f}. {pr['reason'][:1].upper()}{pr['reason'][1:]}. "
                f"The FP32 reference below is the {'pruned' if pr['kept'] else 'unpruned'} model.", ""]
        if pr["table"]:
            out += [markdown_table(*prune_table(pr["table"], column)), ""]
    sp = results.get("sparsity")
    if sp:
        out += [f"2:4 sparsity: masks on {sum(r['sparse'] for r in sp['layers'])} of {len(sp['layers'])} layers "
                f"({sp['macs_share']:.0%} of the MACs); {column} (PyTorch, test split) dense {sp['dense']:.2f}, right "
                f"after masking {sp['after_masking']:.2f}, after {sp['finetune_epochs']} fine-tuning epochs "
                f"{sp['fine_tuned']:.2f}. {sp['reason'][:1].upper()}{sp['reason'][1:]}. Its speed is measured on the "
                "device (the kit builds with TensorRT's sparse-weights flag).", "",
                markdown_table(["layer", "weight shape", "MACs", "2:4", "left dense because"],
                               [[r["layer"], "x".join(map(str, r["shape"])), f"{r['macs']:,}", "yes" if r["sparse"] else "no",
                                 r["reason"]] for r in sp["layers"]]), ""]
    warned = results.get("warned", [])
    out += ["## Gates", "", markdown_table(*gate_rows(results)), "",
            f"Overall: **{'FAIL' if not results['passed'] else 'PASS with warnings' if warned else 'PASS'}**", "",
            "Accuracy gates compare each artifact with the FP32 model image by image on the same test images: "
            "pass when the drop's 95 % interval lies within the allowed drop, FAIL when it lies beyond it, warn "
            "when the test set is too small to show either (the evidence says how many images would decide). "
            "Right/wrong answers use the exact McNemar interval, other figures a paired bootstrap over images.", ""]
    paper = recipe.paper
    out += [f"## Against the paper ({paper.get('ref', '')})", ""]
    if any(p["paper"] is not None or p["paper_fps"] is not None for p in results["paper"]):
        out += [markdown_table(
            ["artifact", column, "paper", "fps here", "paper fps", "comparable"],
            [[p["artifact"], p["value"], p["paper"], p["fps"], f"{p['paper_fps']} ({paper.get('device', '')})",
              "yes" if p["comparable"] else "no (not the paper's data)"] for p in results["paper"]],
        ), ""]
    else:
        out += [f"The paper reports no {column} nor fps for what this recipe builds.", ""]
    out += task_sections
    if results["rows"][0]["robustness"]:
        conds = [c for c in results["rows"][0]["robustness"]]
        ref = paper.get("robustness", {})
        out += [f"## Diversity-enhanced conditions ({column})", ""]
        rows = [["paper", *[ref.get(c) for c in conds[:-1]], paper.get("robust_accuracy")]] if ref else []
        rows += [[r["artifact"], *[r["robustness"][c] for c in conds]] for r in results["rows"]]
        out += [markdown_table(["artifact", *conds], rows), ""]
    out += ["## Notes", "", *[f"- {n}" for n in results["notes"] + d.get("notes", [])], ""]
    return "\n".join(out)
