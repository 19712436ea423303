"""The line-side runtime (``edgekit run``) on a camera's install folder, with a real build of the tiny
recipe bundled and installed as flash leaves it: one JSON line per frame, corrupt frames counted and
skipped, the status endpoint, a new slot swapped in between frames and a failing one left out."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgekit.camera import golden, slots
from edgekit.camera.runtime import RunOptions, run
from edgekit.deploy import keys, loopback
from edgekit.deploy.bundle import write_bundle
from edgekit.errors import EdgekitError
from edgekit.targets import load_target


@pytest.fixture(scope="module")
def camera(tiny_stages, tiny_recipe, tiny_data, tmp_path_factory):
    """The tiny recipe built for intel-cpu from its exported ONNX, bundled twice (two trusted signers: two
    slots of the same model) and installed into a camera folder with the first one active."""
    from edgekit.stages.build import BuildOptions, build
    from edgekit.stages.bundle import bundle

    root = tmp_path_factory.mktemp("line")
    run_dir = root / "run"
    build(tiny_recipe, load_target("intel-cpu"), run_dir,
          BuildOptions(data=tiny_data, onnx=tiny_stages["root"] / "export" / "model.onnx", threads=2))
    install = root / "camera"
    made = {}
    for name in ("mill", "line2"):
        key = keys.new_key(name, root / "keys")
        loopback.prepare_install(install, root / "keys" / f"{name}.pub")
        made[name] = slots.verify(install, Path(bundle(run_dir, "intel-cpu", key, root / f"{name}.bundle")["path"]))
    slots.activate(install, made["mill"]["slot"])
    images = sorted((tiny_data / "IMAGES").iterdir())[:30]
    return {"root": root, "run": run_dir, "install": install, "first": made["mill"]["slot"],
            "second": made["line2"]["slot"], "first_bundle": root / "mill.bundle",
            "second_bundle": root / "line2.bundle", "images": images,
            "key": keys.load_private(root / "keys" / "mill.key")}


def _video(images: list[Path], path: Path, frames: int, corrupt: tuple[int, ...] = ()) -> Path:
    """An MJPG AVI of ``frames`` frames cycling ``images``; the JPEG data of the ``corrupt`` frames zeroed."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (200, 200))
    for i in range(frames):
        writer.write(cv2.imread(str(images[i % len(images)])))
    writer.release()
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
    for k in corrupt:
        data[starts[k] + 2:starts[k] + 400] = bytes(398)
    path.write_bytes(bytes(data))
    return path


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_one_json_line_per_frame_and_corrupt_frames_are_skipped(camera, tmp_path) -> None:
    video = _video(camera["images"], tmp_path / "line.avi", 40, corrupt=(7, 21))
    out = io.StringIO()
    summary = run(RunOptions(str(video), camera["install"], status_port=None), out, log=lambda line: None)
    lines = _lines(out.getvalue())
    assert [r["frame"] for r in lines] == [i for i in range(40) if i not in (7, 21)]
    classes = set(json.loads((camera["run"] / "build.json").read_text()).get("classes", [])) or None
    for r in lines:
        assert r["slot"] == camera["first"] and 0.0 <= r["score"] <= 1.0 and isinstance(r["class"], str)
        assert r["latency_ms"] > 0 and r["time"].endswith("+00:00")
    assert classes is None or {r["class"] for r in lines} <= classes
    assert summary["frames"] == 38 and summary["skipped"] == {"undecodable": 2}
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, image in enumerate(camera["images"][:5]):
        (folder / f"{i:03d}.png").write_bytes(image.read_bytes())
    (folder / "002.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    jpeg = cv2.imencode(".jpg", cv2.imread(str(camera["images"][5])))[1].tobytes()
    (folder / "005.jpg").write_bytes(jpeg[: len(jpeg) // 3])           # a JPEG cut to a third of its length
    assert cv2.imread(str(folder / "005.jpg"), cv2.IMREAD_COLOR) is not None    # OpenCV fills it with grey
    (folder / "006.jpg").write_bytes(jpeg)
    out = io.StringIO()
    summary = run(RunOptions(str(folder), camera["install"], status_port=None, annotate=tmp_path / "drawn"), out,
                  log=lambda line: None)
    assert [r["frame"] for r in _lines(out.getvalue())] == [0, 1, 3, 4, 6]
    assert summary["skipped"] == {"undecodable": 2} and len(list((tmp_path / "drawn").glob("*.jpg"))) == 5


def _bad_golden_bundle(camera, tmp_path, frames: bool = False) -> Path:
    """A bundle of the same model whose golden outputs are not the model's, or (``frames``) whose golden frames
    are not what its inputs were pre-processed from: mirrored (signed by the mill)."""
    folder = camera["install"] / slots.SLOTS / camera["first"]
    manifest = json.loads((folder / "bundle.json").read_text())
    files = {name: folder / name for name in manifest["files"]}
    tmp_path.mkdir(parents=True, exist_ok=True)
    with np.load(folder / golden.FOLDER / golden.ARRAYS) as data:
        if frames:
            arrays = {k: (data[k][:, ::-1] if k.startswith("frame:") else data[k]) for k in data.files}
        else:
            arrays = {k: (-data[k] if ":" in k and not k.startswith("frame:") else data[k]) for k in data.files}
    np.savez(tmp_path / "golden.npz", **arrays)
    files[f"{golden.FOLDER}/{golden.ARRAYS}"] = tmp_path / "golden.npz"
    meta = {k: v for k, v in manifest.items() if k not in ("files", "format")}
    return write_bundle(files, meta, camera["key"], tmp_path / "bad.bundle") and tmp_path / "bad.bundle"


def test_a_new_slot_is_swapped_in_between_frames_and_a_failing_one_is_not(camera, tmp_path) -> None:
    install = camera["install"]
    bad_bundle = _bad_golden_bundle(camera, tmp_path)
    bad = slots.bundle_id(bad_bundle)
    video = _video(camera["images"], tmp_path / "line.avi", 300)
    out, said = io.StringIO(), []
    state = {"switched": None, "bad_at": None}

    def on_frame(n: int) -> None:
        last = json.loads(out.getvalue().splitlines()[-1])
        if n == 10:                                                # what flash does on the camera
            slots.activate(install, slots.verify(install, camera["second_bundle"])["slot"])
        elif state["switched"] is None and last["slot"] == camera["second"]:
            state["switched"] = last["frame"]
            slots.activate(install, slots.verify(install, bad_bundle)["slot"])
            state["bad_at"] = last["frame"]
        threading.Event().wait(0.01)                               # a camera's pace, not a file's
    summary = run(RunOptions(str(video), install, status_port=None, poll_s=0.05), out, log=said.append,
                  on_frame=on_frame)
    lines = _lines(out.getvalue())
    assert [r["frame"] for r in lines] == list(range(300))         # nothing dropped across the swaps
    assert state["switched"] is not None and state["switched"] > 10
    assert [r["slot"] for r in lines] == ([camera["first"]] * state["switched"]
                                          + [camera["second"]] * (300 - state["switched"]))
    assert summary["swaps"] == 1 and summary["swap_failures"] == 1
    assert any(f"slot {bad} failed to load, the running model stays" in s and "golden images fail" in s for s in said)
    slots.activate(install, slots.verify(install, camera["first_bundle"])["slot"])      # as the fixture left it


def _fetch(said: list[str], path: str):
    """``path`` of the status endpoint whose address the run logged."""
    port = next(s for s in said if s.startswith("status: ")).split(":")[3].split("/")[0]
    return urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5)


def test_status_endpoint_serves_prometheus_counters_and_health(camera, tmp_path) -> None:
    said, seen = [], {}

    def on_frame(n: int) -> None:
        if n == 5:
            with _fetch(said, "/metrics") as r:
                seen["metrics"] = r.read().decode()
            with _fetch(said, "/healthz") as r:
                seen["health"] = (r.status, json.loads(r.read()))
    run(RunOptions(str(_video(camera["images"], tmp_path / "v.avi", 8)), camera["install"], status_port=0), io.StringIO(),
        log=said.append, on_frame=on_frame)
    m = seen["metrics"]
    assert "edgekit_frames_total 5.0" in m and 'edgekit_latency_quantile_seconds{quantile="0.99"}' in m
    assert f'slot="{camera["first"]}"' in m and "edgekit_active_bundle_info{" in m and "edgekit_fps " in m
    assert "edgekit_latency_seconds_bucket" in m and "edgekit_model_swap_failures_total 0.0" in m
    assert seen["health"][0] == 200 and seen["health"][1]["healthy"] is True
    # the exposition is edgekit's own (the camera has no prometheus_client): Prometheus' reference parser reads it
    from prometheus_client.parser import text_string_to_metric_families

    families = {f.name: f for f in text_string_to_metric_families(m)}
    assert families["edgekit_frames"].type == "counter" and families["edgekit_frames"].samples[0].value == 5
    latency = families["edgekit_latency_seconds"]
    assert latency.type == "histogram"
    buckets = [s.value for s in latency.samples if s.name.endswith("_bucket")]
    assert buckets == sorted(buckets) and buckets[-1] == 5 == next(s.value for s in latency.samples
                                                                     if s.name.endswith("_count"))
    assert families["edgekit_active_bundle_info"].samples[0].labels["slot"] == camera["first"]


def test_the_run_and_device_commands(camera, tmp_path) -> None:
    def edgekit(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True,
                              env={**os.environ, "COLUMNS": "200", "EDGEKIT_NO_PROGRESS": "1"})
    folder = tmp_path / "frames"
    folder.mkdir()
    for image in camera["images"][:4]:
        (folder / image.name).write_bytes(image.read_bytes())
    done = edgekit("run", "--source", str(folder), "--install", str(camera["install"]), "--out",
                   str(tmp_path / "line.jsonl"), "--status-port", "-1")
    assert done.returncode == 0, done.stderr
    assert len(_lines((tmp_path / "line.jsonl").read_text())) == 4
    again = edgekit("run", "--source", str(folder), "--install", str(camera["install"]), "--out",
                    str(tmp_path / "line.jsonl"), "--status-port", "-1")          # the line restarted
    assert again.returncode == 0 and len(_lines((tmp_path / "line.jsonl").read_text())) == 8
    assert json.loads((tmp_path / "line.summary.json").read_text())["frames"] == 4
    missing = edgekit("run", "--source", str(tmp_path / "nothing.avi"), "--install", str(camera["install"]))
    assert missing.returncode == 2 and "nothing.avi: no such file or folder" in missing.stderr
    empty = edgekit("run", "--source", str(folder), "--install", str(tmp_path))
    assert empty.returncode == 2 and "no active slot (flash a bundle first)" in empty.stderr
    status = edgekit("device", "status", "--install", str(camera["install"]))
    assert status.returncode == 0 and json.loads(status.stdout)["active"]["slot"] == camera["first"]
    checked = edgekit("device", "golden", camera["first"], "--install", str(camera["install"]))
    assert checked.returncode == 0 and json.loads(checked.stdout)["images"] == 8


def test_golden_loads_the_slot_as_run_does_and_refuses_what_run_cannot_load(camera, tmp_path) -> None:
    """Issue 28, finding 2: the camera's acceptance check read the raw outputs alone, so a bundle whose model
    the runtime could not load (no recipe then, no pipeline.json now) came back "active". Golden now loads the
    slot through the runtime's own loader: a slot without a readable pipeline is refused by `golden`."""
    folder = camera["install"] / slots.SLOTS / camera["first"]
    manifest = json.loads((folder / "bundle.json").read_text())
    meta = {k: v for k, v in manifest.items() if k not in ("files", "format")}
    files = {name: folder / name for name in manifest["files"] if name != "model/pipeline.json"}
    write_bundle(files, meta, camera["key"], tmp_path / "no-pipeline.bundle")
    broken = tmp_path / "pipeline.json"
    broken.write_text((folder / "model" / "pipeline.json").read_text().replace('"format": 2', '"format": 1'))
    write_bundle({**files, "model/pipeline.json": broken}, meta, camera["key"], tmp_path / "old-pipeline.bundle")
    for name, why in (("no-pipeline", "no pipeline.json"), ("old-pipeline", "format 1, this edgekit reads 2")):
        slot = slots.verify(camera["install"], tmp_path / f"{name}.bundle")["slot"]
        checked = subprocess.run([sys.executable, "-m", "edgekit", "device", "golden", slot, "--install",
                                  str(camera["install"])], capture_output=True, text=True)
        assert checked.returncode == 2 and why in checked.stderr, checked.stderr


def test_bench_times_the_artifact_end_to_end_as_the_line_runs_it(camera) -> None:
    from edgekit.stages.bench import bench

    artifact = camera["run"] / "compile" / "openvino-int8"
    rows = bench(artifact, None, [1], 1, iters=5, warmup=1)["rows"]
    assert [r.get("timing") for r in rows] == [None, "end to end"] and rows[1]["throughput_fps"] > 0


def test_a_slot_whose_golden_images_fail_is_refused_before_it_runs(camera, tmp_path) -> None:
    from edgekit.camera.model import LineModel

    mirrored = slots.verify(camera["install"], _bad_golden_bundle(camera, tmp_path / "m", frames=True))["slot"]
    with pytest.raises(EdgekitError, match=f"slot {mirrored}: golden images fail: this camera's pre-processing "
                                           "deviates"):
        LineModel.from_slot(camera["install"], mirrored)
    bad = slots.verify(camera["install"], _bad_golden_bundle(camera, tmp_path))["slot"]
    with pytest.raises(EdgekitError, match=f"slot {bad}: golden images fail: output 'logits' deviates"):
        LineModel.from_slot(camera["install"], bad)


def test_the_throughput_benchmark_runs_at_ci_size(camera) -> None:
    """benchmarks/line_throughput.py on the tiny build (the recorded runs use real builds and 1500 frames;
    a ratio on CI's shared cores is not a figure, so none is required here)."""
    script = Path(__file__).parent.parent / "benchmarks" / "line_throughput.py"
    done = subprocess.run([sys.executable, str(script), "--run", str(camera["run"]), "--frames", "60", "--rounds", "1",
                           "--min-ratio", "0"], capture_output=True, text=True,
                          env={**os.environ, "EDGEKIT_NO_PROGRESS": "1", "COLUMNS": "200"})
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    assert "best run" in done.stdout and "│ 60 " in done.stdout     # every frame answered


def test_the_previous_slot_runs_the_line_when_the_active_one_cannot_load(camera, tmp_path) -> None:
    """What a power cut between unpacking and syncing leaves (an active slot of empty files): the line starts
    on the previous slot, says why, and reports it (``edgekit_running_previous_slot``)."""
    import shutil

    install = tmp_path / "camera"
    shutil.copytree(camera["install"], install, symlinks=True)
    slots.activate(install, slots.verify(install, camera["second_bundle"])["slot"])
    assert slots.status_links(install) == {"active": camera["second"], "previous": camera["first"]}
    for path in (install / slots.SLOTS / camera["second"] / "model").iterdir():
        path.write_bytes(b"")                                  # the model's files, never synced
    folder = tmp_path / "frames"
    folder.mkdir()
    for image in camera["images"][:3]:
        (folder / image.name).write_bytes(image.read_bytes())
    out, said = io.StringIO(), []
    summary = run(RunOptions(str(folder), install, status_port=None), out, log=said.append)
    assert [r["slot"] for r in _lines(out.getvalue())] == [camera["first"]] * 3
    assert summary["fallback"].startswith(f"active slot {camera['second']} cannot load")
    assert any(f"running the previous slot {camera['first']}" in line for line in said)
    from edgekit.camera.status import LineMetrics

    metrics = LineMetrics()
    metrics.fallback(summary["fallback"])
    assert "edgekit_running_previous_slot 1.0" in metrics.exposition()
    for path in (install / slots.SLOTS / camera["first"] / "model").iterdir():
        path.write_bytes(b"")                                  # neither can load: the run says so
    with pytest.raises(Exception):
        run(RunOptions(str(folder), install, status_port=None), io.StringIO(), log=said.append)


def test_the_line_watches_its_frames_against_the_reference_its_bundle_carries(camera, tmp_path) -> None:
    """Issue 31 on the camera: the slot holds the drift reference validation measured for the bundled artifact;
    `edgekit run` samples its frames, writes the window's state into its lines, and when the frames turn blurred
    the sharpness alert turns on (logged with the condition it resembles), served as Prometheus metrics that
    Prometheus' parser reads, counted in the summary and in `edgekit drift`'s report."""
    from prometheus_client.parser import text_string_to_metric_families

    from edgekit.camera.drift import FEATURES, DriftOptions, Reference
    from edgekit.drift.reference import for_artifact

    install, run_dir = camera["install"], camera["run"]
    reference = Reference.load(install / "slots" / camera["first"])
    manifest = json.loads((install / "slots" / camera["first"] / "bundle.json").read_text())
    results = json.loads((run_dir / "validate" / "results.json").read_text())
    measured = for_artifact(run_dir / "validate", results, manifest["artifact"])
    assert reference.raw == json.loads(json.dumps(measured.raw)) and reference.features == FEATURES
    assert len(reference.values["score"]) == results["data"]["test"] and len(reference.conditions) == 6
    blurred = tmp_path / "blurred"
    blurred.mkdir()
    for i, image in enumerate(camera["images"]):
        cv2.imwrite(str(blurred / f"{i:03d}.png"), cv2.blur(cv2.imread(str(image)), (9, 9)))
    frames = [cv2.imread(str(p)) for p in camera["images"]] + [cv2.imread(str(p)) for p in sorted(blurred.iterdir())]
    video = tmp_path / "drifting.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (200, 200))
    for i in range(120):
        writer.write(frames[i % 30] if i < 60 else frames[30 + i % 30])
    writer.release()
    said, scraped = [], {}

    def on_frame(n: int) -> None:
        if n == 120:
            with _fetch(said, "/metrics") as r:
                scraped["metrics"] = r.read().decode()
    out = io.StringIO()
    watching = DriftOptions(window=20, budget=1.0, state_every=10, false_alarms_per_day=1e6)     # a file runs
    summary = run(RunOptions(str(video), install, status_port=0, drift=watching), out, log=said.append,  # fast: a
                  on_frame=on_frame)                                                  # day is many looks
    lines = _lines(out.getvalue())
    states = [(r["frame"], r["drift"]) for r in lines if "drift" in r]
    assert [f for f, _ in states] == list(range(20, 120, 10))          # the window's first state, then every 10
    assert summary["drift"]["samples"] == 120 and "sharpness" in summary["drift"]["alerts_on"]
    last = states[-1][1]["features"]["sharpness"]
    assert last["alert"] and last["statistic"] > last["threshold"] and last["median"] < last["band"][0]
    assert last["resembles"]["condition"].startswith("blur_") and last["resembles"]["accuracy"] is None
    alert = next(s for s in said if s.startswith("drift alert: sharpness"))
    assert "like blur_" in alert and "not measured: validate with --robustness" in alert
    families = {f.name: f for f in text_string_to_metric_families(scraped["metrics"])}
    on = {s.labels["feature"]: s.value for s in families["edgekit_drift_alert"].samples}
    assert on["sharpness"] == 1 and set(on) == set(FEATURES)
    assert families["edgekit_drift_sampled_frames"].samples[0].value == 120
    assert any(s.labels["feature"] == "sharpness" and s.labels["condition"].startswith("blur_")
               for s in families["edgekit_drift_condition_accuracy"].samples)
    log = tmp_path / "line.jsonl"
    log.write_text(out.getvalue())
    drawn = subprocess.run([sys.executable, "-m", "edgekit", "drift", str(log), "--bundle",
                            str(camera["first_bundle"])], capture_output=True, text=True,
                           env={**os.environ, "COLUMNS": "200"})
    assert drawn.returncode == 0, drawn.stderr
    rows = {r["feature"]: r for r in json.loads((tmp_path / "line.drift.json").read_text())["features"]}
    assert rows["sharpness"]["alerts"] >= 1 and rows["sharpness"]["first_alert_frame"] >= 60
    assert (tmp_path / "line.drift.png").is_file() and "sharpness" in drawn.stdout and "blur_" in drawn.stdout


def _scaled_weights(xml: Path, weights: bytes, factor: float) -> bytes:
    """``weights`` (an IR's .bin) with every f32 constant the IR lists multiplied by ``factor``: the same network,
    other weights."""
    import xml.etree.ElementTree as ET

    out = bytearray(weights)
    for layer in ET.parse(str(xml)).getroot().iter("layer"):
        data = layer.find("data")
        if layer.get("type") == "Const" and data is not None and data.get("element_type") == "f32":
            start, size = int(data.get("offset")), int(data.get("size"))
            out[start:start + size] = (np.frombuffer(weights[start:start + size], np.float32) * factor).tobytes()
    return bytes(out)


def test_an_openvino_slot_is_compiled_once_and_a_blob_gone_bad_is_compiled_again(camera, tmp_path) -> None:
    """The slot's compiled blob is kept beside it and imported by the next load (the line's start, a swap after
    flash's golden check); a blob that imports but computes something else (gone bad on disk) fails the golden
    images, is thrown away, and the verified IR is compiled afresh: the slot still runs the line."""
    import shutil

    from edgekit.backends import get_backend
    from edgekit.camera.model import LineModel, blob_folder, slot_model
    from edgekit.camera.pipeline import Pipeline

    install, slot = camera["install"], camera["first"]
    blobs = blob_folder(install, slot)
    shutil.rmtree(blobs, ignore_errors=True)
    first = LineModel.from_slot(install, slot)
    assert first.runner.backend == "openvino" and not first.runner.from_cache and len(list(blobs.glob("*.blob"))) == 1
    again = LineModel.from_slot(install, slot)
    assert again.runner.from_cache
    first.close()
    again.close()

    model = install / slots.SLOTS / slot / "model"
    weights = model / "model.bin"
    original, mode = weights.read_bytes(), weights.stat().st_mode
    weights.chmod(0o644)
    shutil.rmtree(blobs)
    weights.write_bytes(_scaled_weights(model / "model.xml", original, 1.5))   # a blob of other weights, made
    get_backend("openvino").load(model / "model.xml", os.cpu_count(), cache=blobs).close()   # under the IR's name
    weights.write_bytes(original)
    weights.chmod(mode)
    assert slots.damaged(install, slot) == []
    runner = get_backend("openvino").load(model / "model.xml", os.cpu_count(), cache=blobs)
    stale = LineModel(Pipeline(model), runner, slot, slot_model(install, slot)[1])
    assert runner.from_cache
    with pytest.raises(EdgekitError, match="golden images fail"):
        golden.check(stale, model.parent / golden.FOLDER)
    stale.close()
    loaded = LineModel.from_slot(install, slot)
    assert not loaded.runner.from_cache and loaded.golden["images"] == 8
    loaded.close()
    assert LineModel.from_slot(install, slot).runner.from_cache                # the new blob


def test_the_status_endpoint_answers_what_it_must_and_refuses_the_rest(tmp_path) -> None:
    """The endpoint's own HTTP/1.0 on socketserver: GET and HEAD of /metrics and /healthz, 405 for other methods,
    400 for what is not a request line (or one longer than 8 KiB), and a client that sends nothing holds up no
    one else."""
    import socket

    from edgekit.camera.status import LineMetrics, serve

    metrics = LineMetrics()
    server = serve(metrics, port=0)

    def ask(raw: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=5) as s:
            s.sendall(raw)
            return b"".join(iter(lambda: s.recv(65536), b""))
    try:
        silent = socket.create_connection(("127.0.0.1", server.server_port))
        assert ask(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.0 503 Service Unavailable\r\n")
        metrics.observe(0.01, False)
        healthy = ask(b"GET /healthz?probe=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert healthy.startswith(b"HTTP/1.0 200 OK\r\n") and b'{"healthy": true, ' in healthy
        head, body = ask(b"GET /metrics HTTP/1.1\r\n\r\n").split(b"\r\n\r\n", 1)
        assert b"Content-Type: text/plain; version=0.0.4" in head and b"edgekit_frames_total 1.0" in body
        assert f"Content-Length: {len(body)}".encode() in head
        assert ask(b"HEAD /metrics HTTP/1.1\r\n\r\n").endswith(b"\r\n\r\n")              # no body
        assert ask(b"POST /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.0 405 ")
        assert ask(b"GET /nothing HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.0 404 ")
        assert ask(b"hello\r\n\r\n").startswith(b"HTTP/1.0 400 ")
        assert ask(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.0 400 ")
        silent.close()
    finally:
        server.shutdown()


def test_the_camera_program_runs_the_line_without_what_it_does_not_need(camera, tmp_path) -> None:
    """Issue 29's memory: the camera's program, running an OpenVINO slot with its status endpoint on, imports
    neither the ``openvino`` package (the C library is enough) nor OpenSSL's hashlib, http.server's client and
    e-mail parsing, numpy.random or numpy.ma: together over 20 MB resident on a camera."""
    from edgekit.camera import pack

    app = pack.write_app(tmp_path / pack.APP)
    video = _video(camera["images"], tmp_path / "v.avi", 6)
    done = subprocess.run([sys.executable, "-X", "importtime", str(app), "run", "--install", str(camera["install"]),
                           "--source", str(video), "--status-port", "0", "--out", str(tmp_path / "l.jsonl")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(_lines((tmp_path / "l.jsonl").read_text())) == 6
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert {"edgekit.backends.openvino_capi", "edgekit.camera.drift"} <= imported
    unwanted = {"openvino", "hashlib", "_hashlib", "ssl", "http.client", "http.server", "email", "numpy.random",
                "numpy.ma", "cryptography"}
    assert not unwanted & imported, unwanted & imported
