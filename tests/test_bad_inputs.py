"""The first hour: bad inputs of the kinds a mill's folders hold, fed through the CLI commands that
take them. Each must end in exit code 2, one line naming the file and the problem, no traceback,
and nothing left in the output folder — before any work is spent."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import onnx
import pytest
import torch
import yaml
from onnx import TensorProto, helper

from edgekit import calibration
from edgekit.data import synth
from edgekit.data.recipe_data import load_split
from edgekit.recipes import load_recipe, recipes_dir
from edgekit.targets import targets_dir


@dataclass
class Case:
    name: str
    make: Callable[[Path, Path], tuple[list, Path]]   # (case folder, clean data) -> (CLI arguments, the file
    #                                                   the error must name)
    problem: str                                # words the error line must hold


def _data(case: Path, source: Path) -> Path:
    dest = case / "data"
    shutil.copytree(source, dest)
    return dest


def _onnx(path: Path, shape=(1, 3, 200, 200)) -> Path:
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, list(shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["input"], ["y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path


def _jpeg(value: int = 90) -> bytes:
    im = np.full((200, 200, 3), value, np.uint8)
    im[50:90, :] = 200
    return cv2.imencode(".jpg", im)[1].tobytes()


def _edit_xml(data: Path, stem: str, old: str, new: str) -> Path:
    xml = data / "ANNOTATIONS" / f"{stem}.xml"
    text = xml.read_text()
    assert old in text, (xml, old)
    xml.write_text(text.replace(old, new, 1))
    return xml


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    """A small, valid NEU-DET-style folder (PNG images, VOC boxes)."""
    return synth.generate(tmp_path_factory.mktemp("clean") / "neu", per_class=2, seed=5, size=200, progress=False)


def select(recipe: str, data: Path, out: Path) -> list:
    return ["calibration", "select", recipe, "--data", data, "--out", out / "m.yaml"]


def image_case(name: str, content: bytes | Callable[[bytes], bytes], problem: str, file: str = "crazing_1.png"):
    def make(case: Path, clean: Path):
        data = _data(case, clean)
        target = data / "IMAGES" / file
        payload = content(target.read_bytes()) if callable(content) else content
        target.write_bytes(payload)
        return select("sdc-squeezenet-mrf", data, case / "out"), target
    return Case(name, make, problem)


def voc_case(name: str, old: str, new: str, problem: str, stem: str = "patches_2"):
    def make(case: Path, clean: Path):
        data = _data(case, clean)
        xml = _edit_xml(data, stem, old, new)
        return select("raf-ssd", data, case / "out"), xml
    return Case(name, make, problem)


def _renamed_image(case: Path, clean: Path):
    data = _data(case, clean)
    odd = data / "IMAGES" / "rust_1.png"
    shutil.copy(data / "IMAGES" / "crazing_1.png", odd)
    return select("sdc-squeezenet-mrf", data, case / "out"), odd


def _svg_annotation(case: Path, clean: Path):
    data = _data(case, clean)
    xml = data / "ANNOTATIONS" / "pitted_surface_1.xml"
    xml.write_text('<svg><rect width="4"/></svg>')
    return select("raf-ssd", data, case / "out"), xml


def _orphan_image(case: Path, clean: Path):
    data = _data(case, clean)
    (data / "ANNOTATIONS" / "inclusion_1.xml").unlink()
    return select("raf-ssd", data, case / "out"), data / "ANNOTATIONS" / "inclusion_1.xml"


def _no_folder(case: Path, clean: Path):
    return select("sdc-squeezenet-mrf", case / "nowhere", case / "out"), case / "nowhere"


def _empty_folder(case: Path, clean: Path):
    (case / "empty").mkdir()
    return select("sdc-squeezenet-mrf", case / "empty", case / "out"), case / "empty"


def _no_test_folder(case: Path, clean: Path):
    return (["train", "sdc-squeezenet-mrf", "--data", clean, "--test-data", case / "gone", "--out", case / "out" / "t"],
            case / "gone")


def _garbage_pretrained(case: Path, clean: Path):
    weights = case / "imagenet.pt"
    weights.write_bytes(b"PK\x03\x04" + bytes(200))   # a zip header and nothing a torch file holds
    return (["train", "sdc-squeezenet-mrf", "--data", clean, "--pretrained", weights, "--out", case / "out" / "t"],
            weights)


def _split_unknown(case: Path, clean: Path):
    listing = case / "split.txt"
    listing.write_text("crazing_1\nno_such_image\n")
    return (["train", "sdc-squeezenet-mrf", "--data", clean, "--split-file", listing, "--out", case / "out" / "t"],
            listing)


def _split_empty(case: Path, clean: Path):
    listing = case / "split.txt"
    listing.write_text("# nothing listed\n\n")
    return (["build", "sdc-squeezenet-mrf", "--target", "cpu", "--data", clean, "--split-file", listing,
             "--out", case / "out"], listing)


def _bench_file(content: Callable[[Path], bytes]):
    def make(case: Path, clean: Path):
        f = case / "model.onnx"
        f.write_bytes(content(case))
        return ["bench", f, "--iters", "1", "--warmup", "0"], f
    return make


def _half_onnx(case: Path) -> bytes:
    data = _onnx(case / "ok.onnx").read_bytes()
    (case / "ok.onnx").unlink()
    return data[: len(data) // 2]


def _build_onnx(content: Callable[[Path], Path]):
    """build --onnx without --data: the built-in data must not be generated for a bad file."""
    def make(case: Path, clean: Path):
        f = content(case)
        return ["build", "sdc-squeezenet-mrf", "--target", "intel-cpu", "--onnx", f, "--out", case / "out"], f
    return make


def _garbage(name: str, data: bytes):
    def write(case: Path) -> Path:
        (case / name).write_bytes(data)
        return case / name
    return write


def _checkpoint(content: Callable[[Path], Path], command: str = "export"):
    def make(case: Path, clean: Path):
        f = content(case)
        if command == "export":
            return ["export", "sdc-squeezenet-mrf", "--checkpoint", f, "--out", case / "out" / "e"], f
        return ["build", "sdc-squeezenet-mrf", "--target", "cpu", "--checkpoint", f, "--out", case / "out"], f
    return make


class _Marker:
    """A pickle that would create a file when loaded: the checkpoint a user must never run."""
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def _code_checkpoint(case: Path) -> Path:
    f = case / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hook": _Marker(case / "PWNED")}, f)
    return f


def _yaml_case(kind: str, edit: Callable[[dict], None] | None, text: str | None = None):
    """A broken recipe (``kind`` "recipe") or target file handed to build: ``text`` as is, or the bundled
    file changed by ``edit``."""
    def make(case: Path, clean: Path):
        bundled = recipes_dir() / "sdc-squeezenet-mrf.yaml" if kind == "recipe" else targets_dir() / "intel-cpu.yaml"
        raw = yaml.safe_load(bundled.read_text())
        if edit is not None:
            edit(raw)
        path = case / f"{kind}.yaml"
        path.write_text(text if text is not None else yaml.safe_dump(raw))
        named = ([path, "--target", "cpu"] if kind == "recipe" else ["sdc-squeezenet-mrf", "--target", path])
        return ["build", *named, "--data", clean, "--out", case / "out"], path
    return make


def _changed_manifest(case: Path, clean: Path):
    data = _data(case, clean)
    recipe = load_recipe("sdc-squeezenet-mrf")
    manifest = calibration.write(calibration.select(recipe, load_split(recipe, data), "m"), case / "m.yaml")
    victim = data / yaml.safe_load(manifest.read_text())["images"][0]["path"]
    image = cv2.imread(str(victim), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(victim), 255 - image)
    return (["quantize", "sdc-squeezenet-mrf", "--onnx", _onnx(case / "m.onnx"), "--data", data,
             "--calibration", manifest, "--out", case / "out" / "q"], manifest)


def _garbage_manifest(case: Path, clean: Path):
    f = case / "m.yaml"
    f.write_text("- just\n- a list\n")
    return (["build", "sdc-squeezenet-mrf", "--target", "cpu", "--data", clean, "--calibration", f,
             "--out", case / "out"], f)


def _not_a_run(case: Path, clean: Path):
    (case / "somewhere").mkdir()
    return ["validate", "sdc-squeezenet-mrf", case / "somewhere", "--data", clean], case / "somewhere"


CASES = [
    image_case("zero-byte image", b"", "empty image file"),
    image_case("truncated JPEG", lambda b: _jpeg()[:900], "corrupt image (image file is truncated", "crazing_2.png"),
    image_case("truncated PNG", lambda b: b[: len(b) // 3], "corrupt image (image file is truncated"),
    image_case("JPEG header then garbage", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4, "corrupt image (a JPEG header"),
    image_case("text file named .png", b"name,value\ncrazing,1\n", "not an image"),
    image_case("HTML error page saved as an image", b"<html><body>404 Not Found</body></html>", "not an image",
               "scratches_2.png"),
    Case("image named after no class", _renamed_image, "unknown class 'rust'"),
    voc_case("malformed XML", "</annotation>", "<annotation>", "malformed XML"),
    Case("not a VOC file", _svg_annotation, "not a Pascal VOC annotation (root element <svg>)"),
    voc_case("inverted box", "<xmin>", "<xmin>9999", "box is inverted"),
    voc_case("box outside the image", "<ymax>", "<ymax>4", "lies outside the 200x200 image"),
    voc_case("unknown class in a box", "<name>patches</name>", "<name>rust</name>", "unknown class 'rust'"),
    voc_case("non-numeric coordinate", "<ymin>", "<ymin>abc", "non-numeric box coordinate"),
    voc_case("difficult flag not 0/1", "<object>", "<object><difficult>maybe</difficult>", "expected 0 or 1"),
    voc_case("box without bndbox", "<bndbox>", "<bndbax>", "malformed XML"),
    Case("image without its annotation", _orphan_image, "annotation missing for image inclusion_1.png"),
    Case("missing data folder", _no_folder, "dataset folder not found"),
    Case("empty data folder", _empty_folder, "no images found"),
    Case("missing test folder", _no_test_folder, "dataset folder not found"),
    Case("split file naming no image", _split_unknown, "entry 2 'no_such_image' names no image"),
    Case("empty split file", _split_empty, "the split file lists no images"),
    Case("garbage ONNX", _bench_file(lambda c: b"this is not protobuf at all"), "not a valid ONNX model"),
    Case("truncated ONNX", _bench_file(_half_onnx), "not a valid ONNX model"),
    Case("empty ONNX", _bench_file(lambda c: b""), "empty file, not an ONNX model"),
    Case("garbage ONNX for build", _build_onnx(_garbage("g.onnx", b"\x08\x07garbage")), "not a valid ONNX model"),
    Case("wrong-shape ONNX for build", _build_onnx(lambda c: _onnx(c / "w.onnx", (1, 3, 224, 224))),
         "input shape (1, 3, 224, 224) does not match recipe sdc-squeezenet-mrf"),
    Case("garbage checkpoint", _checkpoint(_garbage("g.pt", b"not a pickle at all")), "not a torch checkpoint"),
    Case("empty checkpoint", _checkpoint(_garbage("e.pt", b""), "build"), "empty file, not a torch checkpoint"),
    Case("code-carrying checkpoint", _checkpoint(_code_checkpoint), "refused: it would import posix.system"),
    Case("garbage pretrained weights", _garbage_pretrained, "not a torch checkpoint"),
    Case("malformed recipe YAML", _yaml_case("recipe", None, "name: [unclosed\n"), "malformed YAML"),
    Case("recipe with a string size", _yaml_case("recipe", lambda r: r["preprocess"].update(size="big")),
         "preprocess.size: must be a positive whole number of pixels"),
    Case("recipe with a list for train", _yaml_case("recipe", lambda r: r.update(train=[1, 2])),
         "train: must be a mapping"),
    Case("recipe without classes", _yaml_case("recipe", lambda r: r["data"].pop("classes")), "data.classes: missing"),
    Case("malformed target YAML", _yaml_case("target", None, "name: cpu\n  kind: [\n"), "malformed YAML"),
    Case("target with a number for a version",
         _yaml_case("target", lambda t: t.update(compute_capability=8.7, kind="cuda")),
         "compute_capability"),
    Case("calibration images changed", _changed_manifest, "differs from the image the manifest was made from"),
    Case("calibration manifest of another shape", _garbage_manifest, "not an edgekit-calibration/1 manifest"),
    Case("validate on a folder that is no run", _not_a_run, "no compiled artifacts under compile/"),
]



def _run(args: list) -> subprocess.CompletedProcess:
    env = {"EDGEKIT_NO_PROGRESS": "1", "COLUMNS": "200", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run([sys.executable, "-m", "edgekit", *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=300)


def test_at_least_thirty_distinct_bad_inputs() -> None:
    assert len({c.name for c in CASES}) == len(CASES) >= 30


def test_every_bad_input_is_one_line_naming_the_file(clean: Path, tmp_path: Path) -> None:
    prepared = []
    for n, case in enumerate(CASES):
        folder = tmp_path / f"case{n:02d}"
        (folder / "out").mkdir(parents=True)
        args, named = case.make(folder, clean)
        prepared.append((case, folder, args, named))
    with ThreadPoolExecutor(max_workers=4) as pool:
        procs = list(pool.map(lambda p: _run(p[2]), prepared))
    failures = []
    for (case, folder, args, named), proc in zip(prepared, procs):
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        problems = []
        if proc.returncode != 2:
            problems.append(f"exit {proc.returncode}")
        if "Traceback" in proc.stderr + proc.stdout:
            problems.append("traceback")
        if len(lines) != 1 or not lines[0].startswith("error: "):
            problems.append(f"{len(lines)} stderr lines")
        elif str(named) not in lines[0] or case.problem not in lines[0]:
            problems.append(f"line does not name {named.name} and {case.problem!r}")
        left = [p.relative_to(folder) for p in (folder / "out").rglob("*")]
        if left:
            problems.append(f"left {left[:3]}")
        if (folder / "PWNED").exists():
            problems.append("the checkpoint's code ran")
        if problems:
            failures.append(f"{case.name}: {'; '.join(problems)}\n    {proc.stderr.strip()[-400:]}")
    assert not failures, "\n".join(failures)


def _small_data(folder: Path, images: int) -> Path:
    """The built-in layout with ``images`` images: 2 a class for 12, 1 a class for 6, two classes' one for 2."""
    root = synth.generate(folder / "data", per_class=max(1, images // 6), seed=4, progress=False)
    for image in sorted((root / "IMAGES").iterdir())[images:]:
        for part in ("IMAGES", "ANNOTATIONS", "MASKS"):
            for twin in (root / part).glob(image.stem + ".*"):
                twin.unlink()
    assert len(list((root / "IMAGES").iterdir())) == images
    return root


def test_a_dataset_too_small_for_the_split_is_bad_input_for_every_task(tmp_path: Path) -> None:
    """Each task's recipe built from an ONNX file on 2, 6 and 12 images: refused in one line that says what each
    class needs and has, exit 2, before any work and with nothing written."""
    cases = []
    for images in (2, 6, 12):
        data = _small_data(tmp_path / f"d{images}", images)
        for recipe in ("sdc-squeezenet-mrf", "raf-ssd", "lsa-net", "segdec-net"):
            folder = tmp_path / f"{recipe}-{images}"
            (folder / "out").mkdir(parents=True)
            model = _onnx(folder / "m.onnx", (1, *load_recipe(recipe).preprocess.input_shape))
            cases.append((recipe, images, folder, data, ["build", recipe, "--target", "intel-cpu", "--onnx", model,
                                                         "--data", data, "--out", folder / "out"]))
    with ThreadPoolExecutor(max_workers=4) as pool:
        procs = list(pool.map(lambda c: _run(c[4]), cases))
    failures = []
    for (recipe, images, folder, data, _), proc in zip(cases, procs):
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        ok = (proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {data}")
              and "too few images for the build" in lines[0] and "training images" in lines[0]
              and not any((folder / "out").iterdir()))
        if not ok:
            failures.append(f"{recipe} on {images} images: exit {proc.returncode}\n    {proc.stderr.strip()[-500:]}")
    assert not failures, "\n".join(failures)
