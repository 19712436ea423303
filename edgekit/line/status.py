"""The runtime's counters in Prometheus' format (``prometheus_client``) and a local status endpoint:
``/metrics`` for a Prometheus server or node-exporter's textfile, ``/healthz`` for a watchdog (200 while
frames are flowing, 503 when none was processed for ``stale_s``). Bound to 127.0.0.1 by default: a camera
exposes it to the mill's network only when told to."""
from __future__ import annotations

import collections
import json
import threading
import time
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from socketserver import ThreadingMixIn

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily

from edgekit.errors import EdgekitError

QUANTILES = (0.5, 0.9, 0.99)
WINDOW = 1000               # latest frames behind the fps and latency quantiles


class LineMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.frames = Counter("edgekit_frames", "Frames run through the model", registry=r)
        self.defective = Counter("edgekit_defect_frames", "Frames with a defect reported (or decided defective)",
                                 registry=r)
        self.skipped = Counter("edgekit_skipped_frames", "Frames not run: undecodable, or dropped by a live "
                               "source while the model was busy", ["reason"], registry=r)
        self.latency = Histogram("edgekit_latency_seconds", "Pre-processing, inference and post-processing per "
                                 "frame", buckets=(.001, .0025, .005, .01, .02, .05, .1, .2, .5, 1, 2), registry=r)
        r.register(_WindowCollector(self))       # quantiles and fps, computed when scraped, not per frame
        self.swaps = Counter("edgekit_model_swaps", "Models swapped in after the active slot changed", registry=r)
        self.swap_failures = Counter("edgekit_model_swap_failures", "New active slots that failed to load (the "
                                     "running model kept)", registry=r)
        self.bundle = Info("edgekit_active_bundle", "The model running", registry=r)
        self.on_previous = Gauge("edgekit_running_previous_slot", "1 while the previous slot runs because the "
                                 "active one cannot load", registry=r)
        self.last_frame = 0.0
        self.counts: collections.Counter = collections.Counter()      # the same figures, for the summary
        self._lock = threading.Lock()
        self._seconds: collections.deque = collections.deque(maxlen=WINDOW)
        self._stamps: collections.deque = collections.deque(maxlen=WINDOW)

    def observe(self, seconds: float, defective: bool) -> None:
        now = time.monotonic()
        with self._lock:
            self.frames.inc()
            self.counts["frames"] += 1
            if defective:
                self.defective.inc()
                self.counts["defect_frames"] += 1
            self.latency.observe(seconds)
            self._seconds.append(seconds)
            self._stamps.append(now)
            self.last_frame = now

    def skip(self, reason: str, n: int = 1) -> None:
        if n:
            self.skipped.labels(reason).inc(n)
            self.counts[f"skipped {reason}"] += n

    def swapped(self, ok: bool) -> None:
        (self.swaps if ok else self.swap_failures).inc()
        self.counts["swaps" if ok else "swap_failures"] += 1

    def running(self, described: dict[str, Any]) -> None:
        self.bundle.info({k: str(v) for k, v in described.items()})

    def fallback(self, reason: str | None) -> None:
        """Whether the previous slot stands in for an active one that cannot load (``reason``), or not."""
        self.on_previous.set(1 if reason else 0)

    def window(self) -> tuple[float, dict[float, float]]:
        """fps and latency quantiles (seconds) over the last ``WINDOW`` frames."""
        with self._lock:
            seconds, stamps = np.array(self._seconds), list(self._stamps)
        fps = (len(stamps) - 1) / max(stamps[-1] - stamps[0], 1e-9) if len(stamps) > 1 else 0.0
        return fps, {q: float(np.quantile(seconds, q)) if len(seconds) else 0.0 for q in QUANTILES}

    def summary(self) -> dict[str, Any]:
        """The figures so far, for the end-of-run table and JSON."""
        fps, quantiles = self.window()
        return {**{k: self.counts[k] for k in ("frames", "defect_frames")},
                "skipped": {k.split(" ", 1)[1]: v for k, v in self.counts.items() if k.startswith("skipped ")},
                "window_fps": round(fps, 2),
                **{f"p{int(q * 100)}_ms": round(1000 * v, 2) for q, v in quantiles.items()},
                **{k: self.counts[k] for k in ("swaps", "swap_failures")}}


class _WindowCollector:
    """``edgekit_fps`` and ``edgekit_latency_quantile_seconds{quantile}``, computed at scrape time."""

    def __init__(self, metrics: LineMetrics) -> None:
        self.metrics = metrics

    def collect(self):
        fps, quantiles = self.metrics.window()
        yield GaugeMetricFamily("edgekit_fps", f"Frames per second over the last {WINDOW} frames", value=fps)
        family = GaugeMetricFamily("edgekit_latency_quantile_seconds", f"Latency quantiles over the last {WINDOW} "
                                   "frames", labels=["quantile"])
        for q, v in quantiles.items():
            family.add_metric([str(q)], v)
        yield family


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:     # requests are not the runtime's output
        pass


class _Threaded(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def serve(metrics: LineMetrics, host: str = "127.0.0.1", port: int = 9108, stale_s: float = 10.0):
    """Start the status endpoint on a daemon thread; returns the server (``server.server_port``,
    ``server.shutdown()``)."""
    prometheus = make_wsgi_app(metrics.registry)

    def app(environ, start_response):
        if environ.get("PATH_INFO") == "/healthz":
            age = time.monotonic() - metrics.last_frame if metrics.last_frame else None
            healthy = age is not None and age <= stale_s
            body = json.dumps({"healthy": healthy, "seconds_since_frame": age and round(age, 3)}).encode()
            start_response("200 OK" if healthy else "503 Service Unavailable", [("Content-Type", "application/json")])
            return [body]
        return prometheus(environ, start_response)

    try:
        server = make_server(host, port, app, server_class=_Threaded, handler_class=_Quiet)
    except OSError as exc:
        raise EdgekitError(f"status endpoint {host}:{port}: {exc.strerror or exc} (another `edgekit run`? "
                           "--status-port -1 turns it off)") from None
    threading.Thread(target=server.serve_forever, name="edgekit-status", daemon=True).start()
    return server
