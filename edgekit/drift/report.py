"""``edgekit drift LINE.jsonl [--bundle B]``: how a line's frames drifted, from the states ``edgekit run`` wrote
into its JSON lines. A table per feature (alerts raised, when the first fired, the largest statistic against
its threshold, the condition the drift resembled and the figure validation measured there), the same as JSON,
and a picture: each feature's window median over time against the reference's 5-95 % band, the robustness
conditions' medians where the bundle is given, the statistic against its threshold, and the alerts shaded."""
from __future__ import annotations

import collections
import datetime as _dt
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.artifacts import write_json
from edgekit.camera import drift
from edgekit.camera.bundle import PAYLOAD, unverified_tar
from edgekit.errors import EdgekitError
from edgekit.plots import pyplot, save


def read_states(log: Path) -> list[dict[str, Any]]:
    """The drift states in ``log`` (one JSON line per frame, as ``edgekit run`` writes them), oldest first, each
    with its line's ``time`` (a datetime), ``frame`` and ``slot``."""
    log = Path(log)
    if not log.is_file():
        raise EdgekitError(f"{log}: no such file (the JSON lines of `edgekit run --out`)")
    states = []
    with open(log) as f:
        for number, text in enumerate(f, 1):
            try:
                line = json.loads(text)
                if "drift" in line:
                    states.append({"time": _dt.datetime.fromisoformat(line["time"]), "frame": line["frame"],
                                   "slot": line.get("slot"), **line["drift"]})
            except (ValueError, KeyError, TypeError) as exc:
                raise EdgekitError(f"{log}:{number}: not a line of `edgekit run` ({type(exc).__name__}: "
                                   f"{exc})") from None
    if not states:
        raise EdgekitError(f"{log}: no drift state in its lines (the slot's bundle carries no drift reference, or "
                           "the line ran with --no-drift or --drift-state-every 0)")
    return states


def bundled_reference(bundle: Path) -> drift.Reference:
    """The drift reference a bundle carries (read on the workstation, unverified: a report, not a camera)."""
    name = f"{PAYLOAD}/{drift.FOLDER}/{drift.FILE}"
    try:
        with unverified_tar(Path(bundle)) as tar:
            raw = json.loads(tar.extractfile(name).read().decode())
    except KeyError:
        raise EdgekitError(f"{bundle}: carries no drift reference (bundled by an older edgekit)") from None
    except (OSError, tarfile.TarError, ValueError, AttributeError) as exc:
        raise EdgekitError(f"{bundle}: not a bundle ({exc})") from None
    return drift.Reference(raw, f"{bundle}: {name}")


def summarize(states: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per feature: alerts raised (the watch's own count, summed over restarts and swaps), the first
    state with the alert on, the largest statistic over its threshold, and the condition most often resembled."""
    rows = []
    features = list(dict.fromkeys(f for s in states for f in s["features"]))
    for f in features:
        seen = [s for s in states if f in s["features"]]
        raised, last = 0, None
        for s in seen:                       # the count restarts with each process or model
            n = s["features"][f].get("alerts", 0)
            raised += n - last if last is not None and n >= last else n
            last = n
        on = [s for s in seen if s["features"][f]["alert"]]
        worst = max(seen, key=lambda s: s["features"][f]["statistic"] / s["features"][f]["threshold"])
        like = collections.Counter((r["condition"], r["accuracy"]) for s in on
                                   for r in [s["features"][f].get("resembles")] if r)
        (condition, accuracy), _ = like.most_common(1)[0] if like else ((None, None), 0)
        rows.append({"feature": f, "alerts": raised, "states_in_alert": len(on), "states": len(seen),
                     "first_alert": on[0]["time"].isoformat(timespec="seconds") if on else None,
                     "first_alert_frame": on[0]["frame"] if on else None,
                     "max_statistic": worst["features"][f]["statistic"],
                     "threshold": worst["features"][f]["threshold"],
                     "resembles": condition, "accuracy_there": accuracy})
    return rows


def plot(states: list[dict[str, Any]], reference: drift.Reference | None, path: Path) -> str:
    """Per feature: the window median against the reference band (and the conditions' medians), and the
    statistic against its threshold; red where the alert was on."""
    plt = pyplot()
    features = list(dict.fromkeys(f for s in states for f in s["features"]))
    fig, axes = plt.subplots(len(features), 2, figsize=(12, 2.2 * len(features)), squeeze=False, sharex=True)
    for (left, right), f in zip(axes, features):
        seen = [s for s in states if f in s["features"]]
        times = [s["time"] for s in seen]
        value = {k: np.array([s["features"][f][k] for s in seen], float) for k in ("median", "statistic", "threshold")}
        alert = np.array([s["features"][f]["alert"] for s in seen])
        band = seen[-1]["features"][f]["band"]
        left.axhspan(band[0], band[1], color="0.85", label="reference 5-95 %")
        if reference is not None:
            for name in reference.moves.get(f, []):
                level = float(np.median(reference.conditions[name][f]))
                left.axhline(level, color="tab:purple", lw=0.8, ls=":")
                left.annotate(name, (0.99, level), xycoords=("axes fraction", "data"), ha="right", va="bottom",
                              fontsize=7, color="tab:purple")
        left.plot(times, value["median"], color="tab:blue", lw=1.2, label="window median")
        right.plot(times, value["statistic"], color="tab:blue", lw=1.2, label="statistic")
        right.plot(times, value["threshold"], color="black", lw=0.8, ls="--", label="threshold")
        for ax in (left, right):
            ax.fill_between(times, 0, 1, where=alert, color="tab:red", alpha=0.15, transform=ax.get_xaxis_transform(),
                            step="mid", label="alert")
        left.set_ylabel(f)
        right.set_ylim(0, max(1.0, float(value["threshold"].max()) * 1.2))
    axes[0][0].set_title("window median against the validated images")
    axes[0][1].set_title("Kolmogorov-Smirnov statistic")
    axes[0][0].legend(fontsize=7, loc="upper left")
    axes[0][1].legend(fontsize=7, loc="upper left")
    fig.autofmt_xdate()
    return save(plt, fig, path)


def report(log: Path, bundle: Path | None = None, out: Path | None = None) -> dict[str, Any]:
    """Read the log (and the bundle's reference), write ``<log>.drift.png`` and ``<log>.drift.json`` (in ``out``
    if given); returns the JSON."""
    log = Path(log)
    reference = bundled_reference(bundle) if bundle is not None else None     # a bad bundle fails before reading
    states = read_states(log)
    folder = Path(out) if out else log.parent
    folder.mkdir(parents=True, exist_ok=True)
    stem = log.name[:-len(log.suffix)] if log.suffix else log.name
    picture = plot(states, reference, folder / f"{stem}.drift.png")
    result = {"log": str(log), "bundle": str(bundle) if bundle else None, "states": len(states),
              "from": states[0]["time"].isoformat(timespec="seconds"),
              "to": states[-1]["time"].isoformat(timespec="seconds"), "slots": sorted({str(s["slot"]) for s in states}),
              "features": summarize(states), "picture": str(folder / picture)}
    write_json(folder / f"{stem}.drift.json", result)
    return result
