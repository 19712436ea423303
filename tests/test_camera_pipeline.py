"""The camera runs a model from its pipeline.json alone: the post-processing it builds from that file gives
the answers validation scored, for every bundled recipe; the NMS it runs is OpenCV's batched NMS."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edgekit.camera import pipeline
from edgekit.camera.post.detection import nms
from edgekit.errors import EdgekitError
from edgekit.recipes import list_recipes
from edgekit.stages.compile import write_pipeline
from edgekit.tasks import get_task


def raw_outputs(recipe, rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Random raw outputs of the recipe's graph, shaped as it exports them (logits large enough that
    detections and defects appear)."""
    size, k = recipe.preprocess.size, len(recipe.classes)
    if recipe.task == "classification":
        return [rng.normal(0, 3, (n, k)).astype(np.float32)]
    if recipe.task == "detection":
        from edgekit.tasks.detection.spec import DetectionSpec

        p = len(DetectionSpec.from_recipe(recipe).prior_boxes)
        return [rng.normal(0, 1, (n, p, 4)).astype(np.float32), rng.normal(0, 3, (n, p, k + 1)).astype(np.float32)]
    if recipe.task == "segmentation":
        channels = 1 if k == 1 else k + 1
        return [cv2.GaussianBlur(rng.normal(0, 4, (size, size, n * channels)).astype(np.float32), (0, 0), 3)
                .transpose(2, 0, 1).reshape(n, channels, size, size)]
    side = size // 8
    return [cv2.GaussianBlur(rng.normal(0, 4, (side, side, n)).astype(np.float32), (0, 0), 2).transpose(2, 0, 1)[:, None],
            rng.normal(0, 2, (n, 1)).astype(np.float32)]


@pytest.mark.parametrize("recipe", list_recipes(), ids=lambda r: r.name)
def test_the_camera_answers_as_validation_did_from_pipeline_json_alone(recipe, tmp_path) -> None:
    write_pipeline(recipe, tmp_path)
    read = pipeline.Pipeline(tmp_path)
    assert read.preprocess == recipe.preprocess and read.classes == recipe.classes
    task = get_task(recipe)
    outputs = raw_outputs(recipe, np.random.default_rng(0), 4)
    ours, theirs = read.answers(outputs), task.postprocessor(recipe)(outputs)
    records = [json.dumps(read.record(a, 0.3)) for a in ours]
    assert records == [json.dumps(task.line_record(a, recipe.classes, 0.3)) for a in theirs]
    assert any('"defects": [{' in r or '"class"' in r for r in records)      # the comparison compared something


def test_a_pipeline_the_camera_cannot_read_is_one_line_naming_the_file(tmp_path) -> None:
    recipe = next(r for r in list_recipes() if r.task == "detection")
    write_pipeline(recipe, tmp_path)
    np.save(tmp_path / "priors.npy", np.zeros((7, 4), np.float32))
    with pytest.raises(EdgekitError, match=r"priors.npy: \(7, 4\) prior boxes, the pipeline says \d+"):
        pipeline.Pipeline(tmp_path)
    raw = json.loads((tmp_path / "pipeline.json").read_text())
    (tmp_path / "pipeline.json").write_text(json.dumps({**raw, "task": "counting"}))
    with pytest.raises(EdgekitError, match="pipeline.json: task 'counting' has no camera-side post-processing"):
        pipeline.Pipeline(tmp_path)
    (tmp_path / "pipeline.json").write_text(json.dumps({**raw, "outputs": None}))
    with pytest.raises(EdgekitError, match="pipeline.json: incomplete or inconsistent"):
        pipeline.Pipeline(tmp_path)
    (tmp_path / "pipeline.json").write_text("{")
    with pytest.raises(EdgekitError, match="pipeline.json: not JSON"):
        pipeline.Pipeline(tmp_path)


def test_nms_is_opencvs_batched_nms_on_every_opencv_a_camera_has() -> None:
    """The camera's NMS is built on dnn.NMSBoxes (OpenCV 3.4+: JetPack 4.6 ships 4.1); where OpenCV has
    NMSBoxesBatched (4.7+), the two agree index for index, ties and all."""
    if not hasattr(cv2.dnn, "NMSBoxesBatched"):
        pytest.skip("this OpenCV has no NMSBoxesBatched to compare with")
    rng = np.random.default_rng(0)
    for trial in range(200):
        n = int(rng.integers(1, 400))
        xy = rng.random((n, 2))
        boxes = np.concatenate([xy, xy + rng.random((n, 2)) * 0.3], 1).clip(0, 1).astype(np.float32)
        scores = (rng.choice([0.2, 0.5, 0.9], n) if trial % 2 else rng.random(n) + 1e-3).astype(np.float32)
        labels = rng.integers(0, 6, n)
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1).astype(np.float64)
        reference = cv2.dnn.NMSBoxesBatched(xywh, scores, labels.astype(np.int32), 0.0, 0.45)
        assert np.array_equal(nms(boxes, scores, labels, 0.45), np.asarray(reference, np.int64).reshape(-1))
