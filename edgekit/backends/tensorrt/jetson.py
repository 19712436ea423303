"""Jetson telemetry for ``bench``: the power mode (``nvpmodel -q``) and power from ``tegrastats``.

tegrastats prints one line per interval with each power rail as ``NAME <now>mW/<avg>mW`` (JetPack 5/6)
or ``NAME <now>/<avg>`` (JetPack 4, milliwatts). The board's input rail is the power per frame's
numerator where tegrastats reports one; otherwise the sum of the rails it lists.
"""
import re
import shutil
import subprocess
import threading
from typing import Any, Dict, List, Optional

INPUT_RAILS = ("VDD_IN", "POM_5V_IN", "VIN_SYS_5V0")   # Orin NX/Nano & Xavier; Nano; AGX Orin
_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?\b")


def power_mode() -> Optional[str]:
    """The current nvpmodel mode's name (``MAXN``, ``15W`` ...), or None off a Jetson."""
    if shutil.which("nvpmodel") is None:
        return None
    try:
        out = subprocess.run(["nvpmodel", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"NV Power Mode:\s*(\S+)", out)
    return m.group(1) if m else None


def parse_rails(line: str) -> Dict[str, int]:
    """Instantaneous milliwatts per rail in one tegrastats line."""
    return {name: int(now) for name, now, _ in _RAIL.findall(line) if not name.startswith(("RAM", "SWAP", "EMC"))}


def summarize(samples: List[Dict[str, int]]) -> Optional[Dict[str, Any]]:
    if not samples:
        return None
    rails = sorted({r for s in samples for r in s})
    mean = {r: sum(s.get(r, 0) for s in samples) / len(samples) for r in rails}
    total_rail = next((r for r in INPUT_RAILS if r in mean), None)
    total = mean[total_rail] if total_rail else sum(mean.values())
    return {"samples": len(samples), "rails_mw": {r: round(v, 1) for r, v in mean.items()},
            "total_mw": round(total, 1), "total_from": total_rail or "sum of rails"}


class Tegrastats:
    """``with Tegrastats() as t: ...`` samples power while the block runs; ``t.result`` afterwards
    (None off a Jetson, or where tegrastats printed no rails)."""

    def __init__(self, interval_ms: int = 100) -> None:
        self.interval_ms = interval_ms
        self.samples: List[Dict[str, int]] = []
        self.result: Optional[Dict[str, Any]] = None
        self.proc: Optional[subprocess.Popen] = None

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            rails = parse_rails(line)
            if rails:
                self.samples.append(rails)

    def __enter__(self) -> "Tegrastats":
        if shutil.which("tegrastats"):
            self.proc = subprocess.Popen(["tegrastats", "--interval", str(self.interval_ms)],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         universal_newlines=True)
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=5)
            self.thread.join(timeout=5)
        self.result = summarize(self.samples)
