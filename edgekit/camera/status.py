"""The runtime's counters in Prometheus' text format (0.0.4) and a local status endpoint: ``/metrics`` for a
Prometheus server or node-exporter's textfile, ``/healthz`` for a watchdog (200 while frames are flowing,
503 when none was processed for ``stale_s``). Bound to 127.0.0.1 by default: a camera exposes it to the
mill's network only when told to.

The exposition is written here (standard library alone, Python 3.6+: ``prometheus_client`` needs 3.8 and
costs 100 ms of start-up); ``tests/test_line.py`` reads it back with ``prometheus_client``'s own parser. The
endpoint answers HTTP/1.0 GET and HEAD on ``socketserver`` alone: ``http.server`` imports ``http.client``, the
``email`` parser and OpenSSL, 5.7 MB resident on a camera that serves two read-only paths.
"""
import bisect
import collections
import json
import socketserver
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from edgekit.camera.drift import sorted_quantiles
from edgekit.errors import EdgekitError

QUANTILES = (0.5, 0.9, 0.99)
WINDOW = 1000               # latest frames behind the fps and latency quantiles
BUCKETS = (.001, .0025, .005, .01, .02, .05, .1, .2, .5, 1, 2)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HELP = {
    "edgekit_frames": "Frames run through the model",
    "edgekit_defect_frames": "Frames with a defect reported (or decided defective)",
    "edgekit_skipped_frames": "Frames not run: undecodable, or dropped by a live source while the model was busy",
    "edgekit_model_swaps": "Models swapped in after the active slot changed",
    "edgekit_model_swap_failures": "New active slots that failed to load (the running model kept)",
}


DRIFT = (("edgekit_drift_statistic", "statistic", "Kolmogorov-Smirnov statistic of the drift window against the "
          "validated images"),
         ("edgekit_drift_threshold", "threshold", "The statistic past which the drift alert turns on"),
         ("edgekit_drift_alert", "alert", "1 while the feature's frames differ from the validated images"),
         ("edgekit_drift_window_median", "median", "The feature's median over the drift window"))


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Dict[str, str]) -> str:
    return "{" + ",".join('{}="{}"'.format(k, _escape(v)) for k, v in sorted(labels.items())) + "}" if labels else ""


def _number(v: float) -> str:
    return repr(float(v)) if v == v and abs(v) != float("inf") else ("NaN" if v != v else ("+Inf" if v > 0 else "-Inf"))


class LineMetrics:
    """What ``edgekit run`` counts: updated once per frame under a lock, read at scrape time."""

    def __init__(self) -> None:
        self.counts = collections.Counter()      # type: collections.Counter
        self.last_frame = 0.0
        self.info = {}                           # type: Dict[str, str]
        self.on_previous = 0
        self.drift = None                        # the running model's DriftWatch, if its frames are watched
        self._lock = threading.Lock()
        self._buckets = [0] * len(BUCKETS)
        self._latency_sum = 0.0
        self._seconds = collections.deque(maxlen=WINDOW)   # type: collections.deque
        self._stamps = collections.deque(maxlen=WINDOW)    # type: collections.deque

    def observe(self, seconds: float, defective: bool) -> None:
        now = time.monotonic()
        with self._lock:
            self.counts["frames"] += 1
            if defective:
                self.counts["defect_frames"] += 1
            i = bisect.bisect_left(BUCKETS, seconds)
            if i < len(BUCKETS):
                self._buckets[i] += 1
            self._latency_sum += seconds
            self._seconds.append(seconds)
            self._stamps.append(now)
            self.last_frame = now

    def skip(self, reason: str, n: int = 1) -> None:
        if n:
            with self._lock:
                self.counts["skipped " + reason] += n

    def swapped(self, ok: bool) -> None:
        with self._lock:
            self.counts["swaps" if ok else "swap_failures"] += 1

    def running(self, described: Dict[str, Any]) -> None:
        self.info = {k: str(v) for k, v in described.items()}

    def fallback(self, reason: Optional[str]) -> None:
        """Whether the previous slot stands in for an active one that cannot load (``reason``), or not."""
        self.on_previous = 1 if reason else 0

    def window(self) -> Tuple[float, Dict[float, float]]:
        """fps and latency quantiles (seconds) over the last ``WINDOW`` frames."""
        with self._lock:
            seconds, stamps = np.array(self._seconds), list(self._stamps)
        fps = (len(stamps) - 1) / max(stamps[-1] - stamps[0], 1e-9) if len(stamps) > 1 else 0.0
        return fps, {q: float(sorted_quantiles(np.sort(seconds), q)) if len(seconds) else 0.0 for q in QUANTILES}

    def summary(self) -> Dict[str, Any]:
        """The figures so far, for the end-of-run table and JSON."""
        fps, quantiles = self.window()
        out = {k: self.counts[k] for k in ("frames", "defect_frames")}
        out["skipped"] = {k.split(" ", 1)[1]: v for k, v in self.counts.items() if k.startswith("skipped ")}
        out["window_fps"] = round(fps, 2)
        out.update({"p{}_ms".format(int(q * 100)): round(1000 * v, 2) for q, v in quantiles.items()})
        out.update({k: self.counts[k] for k in ("swaps", "swap_failures")})
        return out

    def exposition(self) -> str:
        """Every metric in Prometheus' text format."""
        fps, quantiles = self.window()
        with self._lock:
            counts, buckets, total = dict(self.counts), list(self._buckets), self._latency_sum
        lines = []             # type: List[str]

        def family(name: str, kind: str, helptext: str, samples: List[Tuple[str, Dict[str, str], float]]) -> None:
            lines.extend(["# HELP {} {}".format(name, helptext), "# TYPE {} {}".format(name, kind)])
            lines.extend("{}{} {}".format(name + suffix, _labels(labels), _number(v)) for suffix, labels, v in samples)

        for name, key in (("edgekit_frames", "frames"), ("edgekit_defect_frames", "defect_frames")):
            family(name + "_total", "counter", HELP[name], [("", {}, counts.get(key, 0))])
        skipped = [("", {"reason": k.split(" ", 1)[1]}, v) for k, v in sorted(counts.items())
                   if k.startswith("skipped ")]
        family("edgekit_skipped_frames_total", "counter", HELP["edgekit_skipped_frames"], skipped)
        cumulative, samples = 0, []
        for le, n in zip(BUCKETS, buckets):
            cumulative += n
            samples.append(("_bucket", {"le": _number(le)}, cumulative))
        samples += [("_bucket", {"le": "+Inf"}, counts.get("frames", 0)), ("_sum", {}, total),
                    ("_count", {}, counts.get("frames", 0))]
        family("edgekit_latency_seconds", "histogram", "Pre-processing, inference and post-processing per frame",
               samples)
        family("edgekit_fps", "gauge", "Frames per second over the last {} frames".format(WINDOW), [("", {}, fps)])
        family("edgekit_latency_quantile_seconds", "gauge", "Latency quantiles over the last {} frames".format(WINDOW),
               [("", {"quantile": str(q)}, v) for q, v in quantiles.items()])
        for name, key in (("edgekit_model_swaps", "swaps"), ("edgekit_model_swap_failures", "swap_failures")):
            family(name + "_total", "counter", HELP[name], [("", {}, counts.get(key, 0))])
        family("edgekit_active_bundle_info", "gauge", "The model running", [("", self.info, 1)])
        family("edgekit_running_previous_slot", "gauge", "1 while the previous slot runs because the active one "
               "cannot load", [("", {}, self.on_previous)])
        watch = self.drift
        if watch is not None:
            state = (watch.state or {}).get("features", {})
            family("edgekit_drift_sampled_frames_total", "counter", "Frames the drift watch sampled",
                   [("", {}, watch.samples)])
            for name, key, helptext in DRIFT:
                family(name, "gauge", helptext, [("", {"feature": f}, s[key]) for f, s in sorted(state.items())])
            family("edgekit_drift_alerts_total", "counter", "Drift alerts turned on",
                   [("", {"feature": f}, n) for f, n in sorted(watch.raised.items())])
            like = [(f, s["resembles"]) for f, s in sorted(state.items()) if s.get("resembles")]
            family("edgekit_drift_condition_accuracy", "gauge", "The validated figure under the robustness condition "
                   "an alerting feature's drift resembles (NaN: not measured)",
                   [("", {"feature": f, "condition": r["condition"]},
                     float("nan") if r["accuracy"] is None else r["accuracy"]) for f, r in like])
        return "\n".join(lines) + "\n"


class _Handler(socketserver.StreamRequestHandler):
    """One request: its line and headers read (a line over 8 KiB is a bad request; a client silent for
    ``timeout`` seconds is dropped unanswered), one response, the connection closed."""

    timeout = 5.0
    MAX_LINE, MAX_HEADERS = 8192, 100
    REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
               503: "Service Unavailable"}

    def handle(self) -> None:
        try:
            request = self.rfile.readline(self.MAX_LINE + 1)
            for _ in range(self.MAX_HEADERS):
                header = self.rfile.readline(self.MAX_LINE + 1)
                if header in (b"\r\n", b"\n", b"") or len(header) > self.MAX_LINE:
                    break
        except OSError:                         # timed out or reset: nobody to answer
            return
        parts = request.split()
        if len(request) > self.MAX_LINE or len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
            code, kind, body = 400, "text/plain", b"bad request\n"
        elif parts[0] not in (b"GET", b"HEAD"):
            code, kind, body = 405, "text/plain", b"GET or HEAD\n"
        else:
            code, kind, body = self.server.answer(parts[1].split(b"?")[0].decode("latin-1"))
        head = "HTTP/1.0 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n".format(
            code, self.REASONS[code], kind, len(body))
        try:
            self.wfile.write(head.encode("latin-1") + (body if parts and parts[0] != b"HEAD" else b""))
        except OSError:
            pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: Tuple[str, int], answer) -> None:
        self.answer = answer        # path -> (status code, content type, body)
        super().__init__(address, _Handler)


def serve(metrics: LineMetrics, host: str = "127.0.0.1", port: int = 9108, stale_s: float = 10.0):
    """Start the status endpoint on a daemon thread; returns the server (``server.server_port``,
    ``server.shutdown()``)."""

    def answer(path: str) -> Tuple[int, str, bytes]:
        if path == "/healthz":
            age = time.monotonic() - metrics.last_frame if metrics.last_frame else None
            healthy = age is not None and age <= stale_s
            body = json.dumps({"healthy": healthy, "seconds_since_frame": age and round(age, 3)}).encode()
            return (200 if healthy else 503), "application/json", body
        if path in ("/metrics", "/"):
            return 200, CONTENT_TYPE, metrics.exposition().encode()
        return 404, "text/plain", b"/metrics or /healthz\n"

    try:
        server = _Server((host, port), answer)
    except OSError as exc:
        raise EdgekitError("status endpoint {}:{}: {} (another `edgekit run`? --status-port -1 turns it "
                           "off)".format(host, port, exc.strerror or exc)) from None
    server.server_port = server.server_address[1]
    threading.Thread(target=server.serve_forever, name="edgekit-status", daemon=True).start()
    return server
