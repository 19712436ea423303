"""``edgekit run``: the process beside the line. Frames in, one JSON line per frame out, with the model of
the camera's active slot; when flash switches the slot, the new model is loaded and golden-checked beside
the running one and swapped in between two frames. A slot that fails to load leaves the old model running.

Frames are decoded and pre-processed on a reader thread while the model runs (``latency_ms`` is then the
model and post-processing alone; ``age_ms`` runs from the frame's reading to its answer). Each line:
``{"frame", "time", "slot", "latency_ms", "age_ms", ...}`` and the task's answer (``class`` and ``score``
for a classifier; ``defects`` with class, score, box (x0, y0, x1, y1 as fractions of the frame) and, for
segmentation, area in pixels at the model's resolution). Undecodable frames get no line; they are counted.

Where the slot's bundle carries a drift reference, the frames are watched (:mod:`edgekit.camera.drift`): alerts
are logged when they turn on or off, served as metrics, and every ``state_every`` frames a line carries the
watch's state (``"drift": {"samples", "frames", "window", "features": {name: {"statistic", "threshold",
"alert", "alerts", "median", "band", "resembles"}}}``).
"""
import datetime as _dt
import json
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any, Callable, Dict, Optional, Tuple

from edgekit.camera.drift import DriftOptions, DriftWatch
from edgekit.camera.model import LineModel
from edgekit.camera.preprocess import opencv_single_threaded
from edgekit.camera.slots import ACTIVE, PREVIOUS, hold, status_links
from edgekit.camera.sources import open_source, prefetch
from edgekit.camera.status import LineMetrics, serve
from edgekit.errors import EdgekitError


class RunOptions:
    def __init__(self, source: str, install: Path, min_score: float = 0.5, threads: Optional[int] = None,
                 annotate: Optional[Path] = None, status_host: str = "127.0.0.1", status_port: Optional[int] = 9108,
                 poll_s: float = 0.5, max_frames: Optional[int] = None,
                 drift: Optional[DriftOptions] = DriftOptions()) -> None:
        self.source, self.install = source, Path(install)
        self.min_score = min_score            # detections below it are not reported
        self.threads = threads
        self.annotate = annotate              # write each frame with its answer drawn, here
        self.status_host, self.status_port = status_host, status_port      # port None: no status endpoint
        self.poll_s = poll_s                  # how often the active slot is looked at
        self.max_frames = max_frames
        self.drift = drift and drift.checked()     # None: frames not watched


class SlotWatcher:
    """Follows ``<install>/active``; loads a new slot on a thread of its own while the old model runs."""

    def __init__(self, install: Path, current: str, threads: Optional[int], poll_s: float,
                 log: Callable[[str], None]) -> None:
        self.install, self.current, self.threads, self.log = Path(install), current, threads, log
        self.poll_s, self._next_look = poll_s, 0.0
        self._ready = None          # type: Optional[LineModel]
        self._failed = None         # type: Optional[str]
        self._loading = None        # type: Optional[threading.Thread]

    def poll(self) -> Tuple[Optional[LineModel], bool]:
        """(a newly loaded model to swap in or None, whether a load just failed); cheap between frames."""
        ready, self._ready = self._ready, None
        failed, self._failed = self._failed, None
        now = time.monotonic()
        if self._loading is None and now >= self._next_look:
            self._next_look = now + self.poll_s
            slot = status_links(self.install)[ACTIVE]
            if slot is not None and slot != self.current:
                self.current = slot                 # tried once per change of the link
                self._loading = threading.Thread(target=self._load, args=(slot,), daemon=True)
                self._loading.start()
        return ready, failed is not None

    def _load(self, slot: str) -> None:
        try:
            self._ready = LineModel.from_slot(self.install, slot, self.threads)
            self.log(f"slot {slot} loaded and golden-checked; swapping it in")
        except Exception as exc:  # noqa: BLE001 - any failure keeps the running model
            self._failed = slot
            self.log(f"slot {slot} failed to load, the running model stays: {exc}")
        finally:
            self._loading = None


def first_model(install: Path, threads: Optional[int], log: Callable[[str], None]) -> Tuple[LineModel, Optional[str]]:
    """The active slot's model; when it cannot load (a power cut mid-flash, a slot the camera cannot run), the
    previous slot's, with the reason it stands in. The line runs whenever either can."""
    links = status_links(install)
    if links[ACTIVE] is None:
        raise EdgekitError(f"{install}: no active slot (flash a bundle first)")
    try:
        return LineModel.from_slot(install, links[ACTIVE], threads), None
    except Exception as exc:  # noqa: BLE001 - any failure: the previous slot may still run the line
        if links[PREVIOUS] is None:
            raise
        reason = f"active slot {links[ACTIVE]} cannot load ({str(exc).splitlines()[0][:200]})"
        log(f"{reason}; running the previous slot {links[PREVIOUS]}")
        return LineModel.from_slot(install, links[PREVIOUS], threads), reason


def watch(model: LineModel, options: Optional[DriftOptions], log: Callable[[str], None]) -> Optional[DriftWatch]:
    """The drift watch of ``model``'s reference, or None (turned off, or a bundle without a usable reference)."""
    if options is None:
        return None
    if model.drift is None:
        log("drift watch off for slot {}: {}".format(model.name, model.drift_problem or "its bundle carries no "
                                                     "drift reference (bundled by an older edgekit)"))
        return None
    return DriftWatch(model.drift, options)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def run(opts: RunOptions, out: IO[str] = sys.stdout, log: Optional[Callable[[str], None]] = None,
        on_frame: Optional[Callable[[int], None]] = None) -> Dict[str, Any]:
    """Run until the source ends (or ``max_frames``); returns the summary."""
    log = log or (lambda line: print(f"edgekit run: {line}", file=sys.stderr, flush=True))
    opencv_single_threaded()
    install = Path(opts.install)
    if status_links(install)[ACTIVE] is None:
        raise EdgekitError(f"{install}: no active slot (flash a bundle first)")
    source = open_source(opts.source)                      # checked before the model is loaded
    model, fallback = first_model(install, opts.threads, log)
    holding = hold(install, model.name)                    # never pruned while this process runs it
    slot = status_links(install)[ACTIVE]                   # not tried again until the link changes
    metrics = LineMetrics()
    metrics.drift = watching = watch(model, opts.drift, log)
    metrics.running(model.describe())
    metrics.fallback(fallback)
    server = serve(metrics, opts.status_host, opts.status_port) if opts.status_port is not None else None
    if server is not None:
        log(f"status: http://{opts.status_host}:{server.server_port}/metrics and /healthz")
    if opts.annotate:
        from edgekit.camera.annotate import draw
        Path(opts.annotate).mkdir(parents=True, exist_ok=True)
    watcher = SlotWatcher(install, slot, opts.threads, opts.poll_s, log)
    started, written = time.perf_counter(), 0
    pre = [model.preprocess]                 # the running model's, read by the reader thread
    frames = prefetch(source, prepare=lambda image, pre=pre: (pre[0], pre[0](image)))
    try:
        for frame in frames:
            metrics.skip("dropped", source.dropped - metrics.counts["skipped dropped"])
            if frame.image is None:
                metrics.skip("undecodable")
                continue
            new, failed = watcher.poll()
            if failed:
                metrics.swapped(False)
            if new is not None:
                old, model = model, new
                old.close()
                pre[0] = model.preprocess
                hold(install, model.name)
                metrics.swapped(True)
                metrics.running(model.describe())
                metrics.fallback(None)
                metrics.drift = watching = watch(model, opts.drift, log)
            t0 = time.perf_counter()
            by, x = frame.prepared
            answer = model.answer(x if by == model.preprocess else model.preprocess(frame.image))
            record = model.record(answer, opts.min_score)
            seconds = time.perf_counter() - t0
            metrics.observe(seconds, bool(record.get("defective", record.get("defects"))))
            line = {"frame": frame.index, "time": _dt.datetime.fromtimestamp(frame.time, _dt.timezone.utc)
                    .isoformat(timespec="milliseconds"), "slot": model.name, "latency_ms": round(1000 * seconds, 3),
                    "age_ms": round(1000 * (time.time() - frame.time), 3)}
            line.update(record)
            if watching is not None:
                if watching.due() and watching.observe(frame.image, model.frame_summary(answer)) is not None:
                    for news in watching.news():
                        log(news)
                if opts.drift.state_every and written % opts.drift.state_every == 0 and watching.state:
                    line["drift"] = watching.state
            out.write(json.dumps(line) + "\n")
            out.flush()
            if opts.annotate:
                draw(frame.image, record, Path(opts.annotate) / f"{frame.index:08d}.jpg")
            written += 1
            if on_frame:
                on_frame(written)
            if opts.max_frames and written >= opts.max_frames:
                break
        elapsed = time.perf_counter() - started
    finally:
        frames.close()
        if server is not None:
            server.shutdown()
        model.close()
        holding.unlink()
    summary = {"source": opts.source, "install": str(install), "model": model.describe(), "fallback": fallback,
               "ended": _now(), "seconds": round(elapsed, 3),
               "throughput_fps": round(written / elapsed, 2) if elapsed else 0.0,
               "drift": watching.summary() if watching is not None else None}
    summary.update(metrics.summary())
    return summary


def run_to(opts: RunOptions, out: Optional[Path] = None, log: Optional[Callable[[str], None]] = None) -> Dict[str, Any]:
    """:func:`run` with its lines appended to ``out`` (a restarted line adds to its log, never truncates it)
    and the summary written beside it (``<out>.summary.json``), or the lines on standard output."""
    if out is None:
        return run(opts, sys.stdout, log)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(str(out), "a") as f:
        summary = run(opts, f, log)
    out.with_suffix(".summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def summary_row(summary: Dict[str, Any]) -> Dict[str, Any]:
    """The end-of-run table's one row."""
    return {"model": "{} {}".format(summary["model"]["recipe"], summary["model"]["artifact"]),
            "frames": summary["frames"],
            "skipped": ", ".join("{} {}".format(k, v) for k, v in summary["skipped"].items()) or "none",
            "fps": summary["throughput_fps"], "p50 ms": summary["p50_ms"], "p99 ms": summary["p99_ms"],
            "swaps": summary["swaps"],
            "drift alerts": sum(summary["drift"]["alerts_raised"].values()) if summary.get("drift") else "off"}
