"""INT8 without silent losses: float graph outputs, real entropy histograms independent of image order,
7-bit weights for CPUs without VNNI."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper, numpy_helper

from edgekit import calibration
from edgekit.artifacts import read_manifest
from edgekit.int8 import qdq, ranges
from edgekit.stats import Answers
from edgekit.stages.quantize import quantize
from edgekit.targets import VNNI, host_cpu, load_target

# What edgekit writes for a target CPU like this one: 7-bit weights where it has no VNNI (ONNX Runtime's x86
# kernels then sum pairs of 8-bit products in 16 bits, which full-range weights saturate).
HOST_REDUCE_RANGE = not VNNI & set(host_cpu()[1])


def conv_net(path, channels=4, size=16, seed=0):
    """input -> Conv -> Relu -> Conv -> Flatten -> Softmax (output): a classifier's tail in miniature."""
    rng = np.random.default_rng(seed)
    w1 = numpy_helper.from_array(rng.normal(0, 0.5, (channels, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.5, (2, channels, size, size)).astype(np.float32), "w2")
    nodes = [helper.make_node("Conv", ["input", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"),
             helper.make_node("Flatten", ["c2"], ["logits"], name="flatten"),
             helper.make_node("Softmax", ["logits"], ["scores"], name="softmax", axis=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2]),
                               helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2])], [w1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def wide_tailed(n=24, size=16, seed=1):
    """Mostly small values, a few far out: the activation range min-max and entropy disagree on."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.normal(0, 0.1, (1, 3, size, size)).astype(np.float32)
        x.flat[rng.integers(0, x.size, 2)] = rng.uniform(4, 8, 2)
        out.append(x)
    return out


def tail_pairs(path):
    return qdq.output_tail(onnx.load(str(path)))[0]


def unread(model):
    """Nodes none of whose outputs anything reads, and initializers nothing reads (what a removed Q/DQ pair
    must not leave behind: runtimes warn about each on load)."""
    read = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
    return ([n.name for n in model.graph.node if not any(o in read for o in n.output)]
            + [t.name for t in model.graph.initializer if t.name not in read])


def test_graph_outputs_stay_float_on_every_encoding(tmp_path) -> None:
    fp32 = conv_net(tmp_path / "m.onnx")
    cache = tmp_path / "ranges.json"
    ranges.calibrate(fp32, wide_tailed(), "minmax", cache)
    for encoding in ("s8", "u8"):
        # ONNX Runtime alone puts Q/DQ pairs on the outputs' tail; edgekit's writer removes them
        raw = tmp_path / f"raw-{encoding}.onnx"
        from onnxruntime.quantization import QuantFormat, quantize_static
        quantize_static(str(fp32), str(raw), None, quant_format=QuantFormat.QDQ, activation_type=qdq.ENCODINGS[encoding],
                        weight_type=qdq.ENCODINGS["s8"], calibration_cache_path=str(cache))
        assert tail_pairs(raw)
        out = tmp_path / f"{encoding}.onnx"
        qdq.write(fp32, out, cache, "minmax", encoding, reduce_range=HOST_REDUCE_RANGE)
        model = onnx.load(str(out))
        onnx.checker.check_model(model)
        assert not tail_pairs(out) and unread(model) == []
        producers = {o: n.op_type for n in model.graph.node for o in n.output}
        assert [producers[o.name] for o in model.graph.output] == ["Flatten", "Softmax"]
        assert sum(n.op_type == "QuantizeLinear" for n in model.graph.node) >= 2   # the convs' inputs
        import onnxruntime as ort
        x = wide_tailed(1)[0]
        want = ort.InferenceSession(str(fp32)).run(None, {"input": x})
        got = ort.InferenceSession(str(out)).run(None, {"input": x})
        assert got[1].sum() == pytest.approx(1.0, abs=1e-5) and np.abs(got[0] - want[0]).max() < 0.5


def test_classifier_and_u8_copy_of_a_build_have_no_qdq_on_outputs(tiny_quantized) -> None:
    for name in ("int8.onnx", "int8-u8.onnx"):
        model = onnx.load(str(tiny_quantized / name))
        producers = {o: n.op_type for n in model.graph.node for o in n.output}
        assert all(producers[o.name] != "DequantizeLinear" for o in model.graph.output)
        assert not tail_pairs(tiny_quantized / name) and unread(model) == []


def _range(cache, tensor):
    data = json.loads(cache.read_text())["data"][tensor]
    return float(np.asarray(data["highest"]["data"] if isinstance(data["highest"], dict) else data["highest"]).max())


def test_entropy_ranges_use_real_histograms_and_differ_from_minmax(tmp_path) -> None:
    fp32 = conv_net(tmp_path / "m.onnx")
    batches = wide_tailed()
    for method in ("minmax", "entropy"):
        ranges.calibrate(fp32, batches, method, tmp_path / f"{method}.json")
    minmax, entropy = _range(tmp_path / "minmax.json", "input"), _range(tmp_path / "entropy.json", "input")
    assert entropy < 0.2 * minmax      # the KL search clipped the outliers (128 bins would keep min-max)
    # ONNX Runtime's own defaults, 128 bins and 128 quantized bins, leave one candidate: the full range
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator
    c = create_calibrator(fp32, None, str(tmp_path / "aug.onnx"), calibrate_method=CalibrationMethod.Entropy)
    c.collect_data(ranges.BatchReader(batches, "input"))
    assert float(np.asarray(c.compute_data()["input"].range_value[1])) == pytest.approx(minmax, rel=0.02)


def test_entropy_ranges_do_not_depend_on_the_order_of_the_images(tmp_path, tiny_recipe, tiny_stages, tiny_data,
                                                                 monkeypatch) -> None:
    """A histogram calibrator's ranges depend on the order it sees the images in (its histograms are merged
    batch by batch), so the quantize stage hands them over sorted by content: a reordered manifest (same images,
    same key) gives the calibrator the same batches in the same order, hence the same ranges. The stage stops at
    the calibrator here: ONNX Runtime's entropy search costs a minute a run on this model and is deterministic
    for a given input (and its cache records the method, so min-max cannot stand in)."""
    assert ranges.canonical_order(["b", "a", "c"], ["2f", "01", "ff"]) == ["a", "b", "c"]
    manifest = yaml.safe_load(tiny_stages["manifest"].read_text())
    manifest["images"] = manifest["images"][::-1]
    reordered = calibration.write(manifest, tmp_path / "reordered.yaml")
    seen = []

    class Calibrated(Exception):
        pass

    def calibrate(fp32, batches, method, cache, percentile=None):
        seen.append((method, np.stack(batches)))
        raise Calibrated
    monkeypatch.setattr(ranges, "calibrate", calibrate)
    for name, m in (("first", tiny_stages["manifest"]), ("second", reordered)):
        with pytest.raises(Calibrated):
            quantize(tiny_recipe, tiny_stages["root"] / "export", m, tiny_data, tmp_path / name, method="entropy",
                     cache_dir=tmp_path / f"cache-{name}")
    (method, first), (_, second) = seen
    assert method == "entropy" and len(first) == len(manifest["images"]) and np.array_equal(first, second)
    assert not np.array_equal(first, first[::-1])                 # the two orders would have differed
    assert not (tmp_path / "first").exists()                      # a stage stopped midway leaves nothing
    assert ranges.calibrator_options("entropy") == {"num_bins": 2048, "num_quantized_bins": 128}


def test_weights_keep_seven_bits_for_a_cpu_without_vnni(tmp_path, tiny_recipe, tiny_stages, tiny_data) -> None:
    assert not load_target("cpu").int8_dot and load_target("intel-cpu").int8_dot and load_target("jetson-orin").int8_dot
    quantize(tiny_recipe, tiny_stages["root"] / "export", tiny_stages["manifest"], tiny_data, tmp_path / "q",
             cache_dir=tmp_path / "cache", reduce_range=True)
    for folder, limit in ((tmp_path / "q", 64), (tiny_stages["root"] / "quantize", 127)):
        model = onnx.load(str(folder / "int8-u8.onnx"))
        inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        weights = [inits[n.input[0]] for n in model.graph.node
                   if n.op_type == "DequantizeLinear" and n.input[0] in inits and inits[n.input[0]].ndim == 4]
        assert weights and max(int(np.abs(w.astype(np.int32)).max()) for w in weights) == limit
    assert read_manifest(tmp_path / "q")["settings"]["reduce_range"] is True


def sensitive_net(path, size=16, seed=0):
    """Four convs; conv1 makes one channel 2000x wider than the rest and conv2 barely reads it, so one
    INT8 range for that tensor crushes the channels that decide the class."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.5, (8, 3, 3, 3)).astype(np.float32)
    w1[0] *= 2000.0
    w2 = rng.normal(0, 0.3, (8, 8, 3, 3)).astype(np.float32)
    w2[:, 0] *= 1e-4
    w3 = rng.normal(0, 0.3, (8, 8, 3, 3)).astype(np.float32)
    w4 = rng.normal(0, 0.05, (3, 8, size, size)).astype(np.float32)
    inits = [numpy_helper.from_array(w, f"w{i}") for i, w in enumerate((w1, w2, w3, w4), 1)]
    nodes = []
    for i in (1, 2, 3):
        source = "input" if i == 1 else f"r{i - 1}"
        nodes += [helper.make_node("Conv", [source, f"w{i}"], [f"c{i}"], name=f"conv{i}", pads=[1] * 4),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}")]
    nodes += [helper.make_node("Conv", ["r3", "w4"], ["c4"], name="conv4"),
              helper.make_node("Flatten", ["c4"], ["logits"], name="flatten")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


class SensitiveCase:
    """``sensitive_net`` with 40 calibration and 40 held-aside images, its min-max ranges, a Q/DQ writer and the
    bound (2 points of the held-aside images' FP32 classes)."""

    def __init__(self, folder) -> None:
        from edgekit.int8 import accuracy

        self.folder, self.fp32 = folder, sensitive_net(folder / "m.onnx")
        rng = np.random.default_rng(5)
        xs = [rng.normal(0, 1, (1, 3, 16, 16)).astype(np.float32) for _ in range(80)]
        self.calibration_images, self.held = xs[:40], xs[40:]
        ranges.calibrate(self.fp32, self.calibration_images, "minmax", folder / "ranges.json")
        self.truth = self.classes(self.fp32)
        self.bound = accuracy.Bound(lambda path: Answers.right_or_wrong(self.classes(path) == self.truth), self.held,
                                    max_drop=2.0)

    def classes(self, path, backend=None):
        from edgekit.backends import get_backend

        backend = backend or ("openvino" if str(path).endswith(".xml") else "onnxruntime")
        runner = get_backend(backend).load(path, 1)
        return np.array([runner.infer(x)[0].argmax() for x in self.held])

    def write(self, path, nodes, encoding="s8"):
        qdq.write(self.fp32, path, self.folder / "ranges.json", "minmax", encoding, reduce_range=HOST_REDUCE_RANGE,
                  exclude=nodes)


def test_accuracy_bound_keeps_the_sensitive_layer_in_float_on_every_backend(tmp_path) -> None:
    import onnxruntime as ort
    from edgekit.int8 import accuracy

    case = SensitiveCase(tmp_path)
    fp32, write, classes, truth = case.fp32, case.write, case.classes, case.truth
    assert len(set(truth)) == 3
    record = accuracy.bounded(fp32, tmp_path / "int8.onnx", write, case.bound)
    assert record["int8"] < 70.0                              # every layer INT8: the crushed channels decide
    assert [k["node"] for k in record["kept_float"]] == ["conv2"] and record["final"] >= 98.0
    assert record["status"] == "within bound with 1 of 4 layers in float"
    model = onnx.load(str(tmp_path / "int8.onnx"))
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    conv2 = next(n for n in model.graph.node if n.name == "conv2")
    assert producers[conv2.input[0]] == "Relu" and conv2.input[1] == "w2"     # float input, float weights
    assert unread(model) == []
    assert sum(n.op_type == "QuantizeLinear" for n in model.graph.node) >= 3  # the rest stays INT8
    # the same mixed network on OpenVINO and on ONNX Runtime's u8 encoding
    write(tmp_path / "int8-u8.onnx", ("conv2",), "u8")
    assert (classes(tmp_path / "int8.onnx", "openvino") == truth).mean() >= 0.95
    assert (classes(tmp_path / "int8-u8.onnx") == truth).mean() >= 0.95
    every = tmp_path / "every.onnx"
    write(every, ())
    assert (classes(every, "openvino") == truth).mean() < 0.7
    ort.InferenceSession(str(tmp_path / "int8-u8.onnx"))


def test_nncf_model_is_held_to_the_same_bound_by_the_same_ranking(tmp_path) -> None:
    import openvino as ov
    from edgekit.int8 import accuracy, openvino_nncf

    case = SensitiveCase(tmp_path)
    case.bound.max_float = 0.5          # NNCF's model of this network needs two of its four layers in float
    probes = []
    ranked = accuracy.ranking(case.fp32, lambda path, nodes: probes.append(nodes) or case.write(path, nodes), case.bound)
    qdq_record = accuracy.bounded(case.fp32, tmp_path / "int8.onnx", case.write, case.bound, ranked)
    record = openvino_nncf.bounded(case.fp32, case.calibration_images, tmp_path / "nncf.xml", case.bound, ranked,
                                   "minmax")
    bound = record["accuracy_bound"]
    assert bound["int8"] < 70.0                                # NNCF's every-layer model crushes the same channels
    assert [k["node"] for k in bound["kept_float"]][0] == "conv2" and bound["final"] >= 98.0
    assert bound["status"].startswith("within bound")
    # NNCF's other activation ranges were tried first, every layer in INT8: none rescues the crushed channels
    assert set(bound["alternatives"]) == {"entropy ranges", "NNCF default ranges"}
    assert max(bound["alternatives"].values()) < 98.0
    assert [k["node"] for k in qdq_record["kept_float"]] == ["conv2"]
    assert len(probes) == 1 + 4                                # one ranking (the full model, then each layer) for both
    assert "ignored_scope" in record["call"]
    # in NNCF's IR the float layers read their float inputs; the other convolutions read quantized ones
    model = ov.Core().read_model(str(tmp_path / "nncf.xml"))
    floats = set(openvino_nncf.openvino_layers(model, [k["node"] for k in bound["kept_float"]]))
    feeds = {op.get_friendly_name(): op.input_value(0).get_node().get_type_name()
             for op in model.get_ops() if op.get_type_name() == "Convolution"}
    assert {feeds[name] for name in floats} <= {"Relu", "Parameter"}
    assert {feeds[name] for name in set(feeds) - floats} == {"FakeQuantize"}
    with pytest.raises(Exception, match="no OpenVINO convolution"):
        openvino_nncf.openvino_layers(model, ["relu1"])


def test_accuracy_bound_tries_the_every_layer_alternatives_before_float_layers(tmp_path) -> None:
    from edgekit.int8 import accuracy

    fp32, out = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    held = {"recipe's ranges": 97.0, "a": 98.5, "b": 99.5}           # held-aside figures; FP32 100, 1 point allowed

    def score(path):       # 200 held-aside images: FP32 answers all right; 99.5 is one image lost, within 1 point
        right = np.ones(200)
        right[:round(2 * (100.0 - (100.0 if path == fp32 else held[path.read_text()])))] = 0
        return Answers.right_or_wrong(right)

    def no_ranking():
        raise AssertionError("no layer was to be ranked: an alternative is within the bound")

    record = accuracy.bounded(fp32, out, lambda path, nodes: path.write_text("recipe's ranges"),
                              accuracy.Bound(score, [], max_drop=1.0), no_ranking,
                              {name: (lambda path, name=name: path.write_text(name)) for name in ("a", "b")})
    assert record["status"] == "within bound with every layer in INT8, b" and out.read_text() == "b"
    assert record["alternatives"] == {"a": 98.5, "b": 99.5} and record["kept_float"] == [] and record["final"] == 99.5


def test_accuracy_bound_costs_nothing_when_int8_is_within_it(tmp_path) -> None:
    from edgekit.int8 import accuracy

    fp32 = conv_net(tmp_path / "m.onnx")
    ranges.calibrate(fp32, wide_tailed(), "minmax", tmp_path / "ranges.json")
    calls = []
    bound = accuracy.Bound(lambda path: calls.append(path) or Answers.right_or_wrong(np.ones(4)), wide_tailed(4),
                           max_drop=1.0)
    record = accuracy.bounded(fp32, tmp_path / "int8.onnx", lambda p, n: qdq.write(fp32, p, tmp_path / "ranges.json",
                                                                                   "minmax", "s8", exclude=n), bound)
    assert record["kept_float"] == [] and len(calls) == 2 and record["status"].startswith("within bound with every")


def test_openvino_gets_nncfs_model_when_faster_or_alone_within_the_bound() -> None:
    from edgekit.int8.openvino_nncf import choose

    fast, slow = {"qdq": 2.0, "nncf": 1.5}, {"qdq": 2.0, "nncf": 1.99}
    both, qdq_only, nncf_only = {"qdq": True, "nncf": True}, {"qdq": True, "nncf": False}, {"qdq": False, "nncf": True}
    assert choose(fast, {"qdq": 99.5, "nncf": 99.5}, both, 100.0, 1.0)["chosen"] == "nncf"
    assert choose(slow, {"qdq": 99.5, "nncf": 99.5}, both, 100.0, 1.0)["chosen"] == "qdq"          # not 3 % faster
    assert choose(fast, {"qdq": 99.5, "nncf": 98.0}, qdq_only, 100.0, 1.0)["chosen"] == "qdq"      # NNCF out of bound
    alone = choose(slow, {"qdq": 97.9, "nncf": 99.0}, nncf_only, 100.0, 1.0)
    assert alone["chosen"] == "nncf" and alone["reason"].startswith("only NNCF's model is within")


def test_build_table_line_says_how_nncfs_model_got_within_the_bound() -> None:
    from edgekit.stages.quantize import summary

    def line(status, chosen="nncf"):
        return summary({"settings": {"method": "minmax"}, "results": {"accuracy_bound": None, "openvino_int8": {
            "chosen": chosen, "accuracy_bound": {"status": status}}}})

    assert line("within bound with every layer in INT8").endswith("OpenVINO INT8 from NNCF")
    assert line("within bound with every layer in INT8, entropy ranges").endswith(
        "from NNCF (every layer in INT8, entropy ranges)")
    assert line("within bound with 4 of 82 layers in float").endswith("from NNCF (4 of 82 layers in float)")
    assert line("within bound with 4 of 82 layers in float", "qdq").endswith("from the Q/DQ model")


def _input_fq_high(xml) -> float:
    import openvino as ov

    for op in ov.Core().read_model(str(xml)).get_ordered_ops():
        if op.get_type_name() == "FakeQuantize" and op.input_value(0).get_node().get_type_name() == "Parameter":
            return float(np.abs(op.input_value(2).get_node().get_data()).max())
    raise AssertionError("no FakeQuantize on the input")


def test_nncf_activation_ranges_follow_the_calibration_method(tmp_path) -> None:
    from edgekit.int8 import openvino_nncf

    fp32 = conv_net(tmp_path / "m.onnx")
    batches = [np.random.default_rng(i).uniform(-1, 1, (1, 3, 16, 16)).astype(np.float32) for i in range(8)]
    batches[3].flat[7] = 8.0                          # one image with a far larger value than the rest
    highs = {}
    for method in (None, "minmax", "percentile"):
        record = openvino_nncf.quantize(fp32, batches, tmp_path / f"{method}.xml", method, 99.0)
        highs[method] = _input_fq_high(tmp_path / f"{method}.xml")
        assert record["activation_ranges"].startswith(method or "NNCF's default")
    assert highs["minmax"] == pytest.approx(8.0, rel=0.01)        # the global maximum, as the Q/DQ model's
    assert highs[None] < 2.5                                       # NNCF's default: the mean of per-image maxima
    assert highs["percentile"] < 1.0                               # each image's 99th percentile, averaged


def test_the_bound_lets_the_drop_decide_where_the_held_aside_set_cannot() -> None:
    """200 held-aside images, INT8 2 answers worse and 1 better (drop 0.5): the paired gate cannot decide at
    1 point (it would warn), so the drop decides and the model is within; a drop the evidence shows beyond the
    bound (10 worse) never is."""
    from edgekit.int8 import accuracy

    fp32 = np.zeros(200, bool)
    fp32[:190] = True
    mixed = fp32.copy()
    mixed[[0, 1]] = False
    mixed[199] = True
    worse = fp32.copy()
    worse[:10] = False
    models = {"fp32": fp32, "mixed": mixed, "worse": worse}
    bound = accuracy.Bound(lambda path: Answers.right_or_wrong(models[str(path)]), [], max_drop=1.0)
    _, evidence = bound.check("fp32", "mixed")
    assert evidence["status"] == "warn" and evidence["within"] and evidence["drop"] == pytest.approx(0.5)
    _, evidence = bound.check("fp32", "worse")
    assert evidence["status"] == "fail" and not evidence["within"]
