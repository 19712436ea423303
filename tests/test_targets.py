"""Deployment targets: the bundled YAML files, version ranges and the validation of users' files."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from edgekit import targets as targets_mod
from edgekit.errors import EdgekitError
from edgekit.targets import Target, VersionRange, list_targets, load_target, targets_dir

EXPECTED = {"jetson-orin-agx", "jetson-orin-nx", "jetson-orin-nano", "jetson-xavier-nx", "jetson-nano",
            "desktop-cuda", "intel-cpu", "cpu"}

# JetPack release -> the TensorRT (major.minor) it ships. DESIGN.md: 4.6.1-4.6.x -> 8.2, 5.1 -> 8.5,
# 6.0 -> 8.6, 6.1 -> 10.3 ("JetPack stays on 10.x"); from NVIDIA's JetPack release notes: 5.0.2 -> 8.4,
# 5.1.1-5.1.x -> 8.5, 6.2 / 6.2.1 -> 10.3.
JETPACK_TENSORRT = {
    "4.6.1": "8.2", "4.6.2": "8.2", "4.6.3": "8.2", "4.6.4": "8.2", "4.6.5": "8.2", "4.6.6": "8.2",
    "5.0.2": "8.4",
    "5.1": "8.5", "5.1.1": "8.5", "5.1.2": "8.5", "5.1.3": "8.5", "5.1.4": "8.5", "5.1.5": "8.5",
    "6.0": "8.6",
    "6.1": "10.3",
    "6.2": "10.3", "6.2.1": "10.3",
}


def _key(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


# ---------------------------------------------------------------------------------- bundled files

def test_every_bundled_file_loads():
    found = list_targets()
    assert {t.name for t in found} == EXPECTED
    assert {p.stem for p in targets_dir().glob("*.yaml")} == EXPECTED
    for t in found:
        assert isinstance(t, Target)
        assert t.path.stem == t.name, f"{t.path}: name must match the file name"
        assert load_target(t.name) == t
        assert load_target(str(t.path)) == t  # as a user's path too
        assert load_target(t.path) == t


def test_jetson_orin_resolves_to_the_agx():
    agx = load_target("jetson-orin")
    assert agx.name == "jetson-orin-agx"
    assert agx.compute_capability == "8.7" and agx.dla_cores == 2 and agx.memory_gb == 64
    assert load_target("Jetson-Orin").name == "jetson-orin-agx"  # names are case-insensitive


def test_every_alias_resolves_to_its_target():
    for t in list_targets():
        for alias in t.aliases:
            assert load_target(alias).name == t.name


def test_nano_uses_the_calibration_cache_and_lists_no_int8():
    nano = load_target("jetson-nano")
    assert nano.int8_route == "calibration-cache"
    assert "int8" not in nano.precisions
    assert nano.precisions == ("fp32", "fp16")
    assert not nano.supports("int8") and nano.supports("fp16")
    assert nano.compute_capability == "5.3"
    assert nano.tensorrt == VersionRange("8.2", "8.2")
    assert nano.peak.int8_tops is None and nano.peak.fp16_tflops == pytest.approx(0.472)


def test_jetson_tensorrt_range_matches_its_jetpack_range():
    jetsons = [t for t in list_targets() if t.kind == "jetson"]
    assert len(jetsons) == 5
    for t in jetsons:
        assert t.jetpack is not None and t.tensorrt is not None
        assert t.jetpack.min in JETPACK_TENSORRT, f"{t.name}: JetPack {t.jetpack.min} not in the table"
        shipped = [trt for jp, trt in JETPACK_TENSORRT.items() if t.jetpack.contains(jp)]
        assert shipped, t.name
        assert t.tensorrt.min == min(shipped, key=_key), t.name
        assert t.tensorrt.max == max(shipped, key=_key), t.name
        for jp, trt in JETPACK_TENSORRT.items():
            if t.jetpack.contains(jp):
                assert t.tensorrt.contains(trt + ".0"), (t.name, jp, trt)


def test_int8_routes_follow_the_tensorrt_versions():
    for t in list_targets():
        if t.int8_route == "calibration-cache":  # implicit calibration: TensorRT 8.x only
            assert t.tensorrt is not None and _key(t.tensorrt.max)[0] < 11
        if t.kind == "jetson" and "int8" in t.precisions:
            assert t.int8_route == "qdq" and _key(t.tensorrt.max) >= (8, 5)


def test_non_jetson_targets():
    cuda = load_target("desktop-cuda")
    assert (cuda.kind, cuda.backend, cuda.compute_capability, cuda.dla_cores) == ("cuda", "tensorrt", "8.6", 0)
    assert cuda.jetpack is None and cuda.tensorrt == VersionRange("8.6", "11.x")
    assert cuda.tensorrt.contains("11.2") and cuda.tensorrt.contains("8.6.1.6")
    intel = load_target("intel-cpu")
    assert (intel.backend, intel.fallback, intel.precisions) == ("openvino", "onnxruntime", ("fp32", "fp16", "int8"))
    assert intel.bf16 and intel.int8_dot and not load_target("cpu").bf16
    assert intel.tensorrt is None and intel.compute_capability is None
    cpu = load_target("cpu")
    assert (cpu.backend, cpu.fallback, cpu.precisions) == ("onnxruntime", None, ("fp32", "int8"))
    for t in list_targets():
        if t.kind != "jetson":
            assert t.power_modes == () and t.jetpack is None


def test_peak_figures_are_dense():
    agx = load_target("jetson-orin-agx")
    # NVIDIA: 275 sparse INT8 TOPS = GPU 170 + DLA 105; stored dense (halved)
    assert agx.peak.int8_tops + agx.peak.dla_int8_tops == pytest.approx(275 / 2, rel=0.02)
    assert agx.peak.fp32_tflops == pytest.approx(5.3)
    nx = load_target("jetson-orin-nx")
    assert nx.peak.int8_tops + nx.peak.dla_int8_tops == pytest.approx(100 / 2, rel=0.05)
    nano = load_target("jetson-orin-nano")
    assert nano.peak.int8_tops == pytest.approx(40 / 2) and nano.dla_cores == 0 and nano.peak.dla_int8_tops is None
    xnx = load_target("jetson-xavier-nx")  # Volta: no sparsity, 21 TOPS already dense
    assert xnx.peak.int8_tops + xnx.peak.dla_int8_tops == pytest.approx(21, rel=0.05)


def test_summary_row():
    row = load_target("jetson-orin-agx").summary_row()
    assert set(row) == {"name", "kind", "backend", "fallback", "cc", "tensorrt", "precisions", "dla", "memory_gb",
                        "peak_int8_tops"}
    assert row["name"] == "jetson-orin-agx" and row["backend"] == "tensorrt" and row["fallback"] == "openvino"
    assert row["tensorrt"] == "8.5..10.3" and row["cc"] == "8.7" and row["dla"] == 2
    assert row["memory_gb"] == 64 and "85" in row["peak_int8_tops"]
    cpu = load_target("cpu").summary_row()
    assert cpu["backend"] == "onnxruntime" and cpu["cc"] == "-" and cpu["tensorrt"] == "-"


# ---------------------------------------------------------------------------------- VersionRange

@pytest.mark.parametrize("rng, version, inside", [
    (VersionRange("8.5", "10.3"), "10.3.0.30", True),   # max "10.3" takes in every 10.3.*
    (VersionRange("8.5", "10.3"), "10.3", True),
    (VersionRange("8.5", "10.3"), "10.4", False),
    (VersionRange("8.5", "10.3"), "10.4.0.26", False),
    (VersionRange("8.5", "10.3"), "10.10", False),      # numeric: 10.10 > 10.3
    (VersionRange("8.5", "10.3"), "10.2.99", True),
    (VersionRange("8.5", "10.3"), "9", True),
    (VersionRange("8.5", "10.3"), "8.5", True),
    (VersionRange("8.5", "10.3"), "8.5.0", True),
    (VersionRange("8.5", "10.3"), "8.5.2.2", True),
    (VersionRange("8.5", "10.3"), "8.4.3", False),
    (VersionRange("8.5", "10.3"), "8", False),          # 8 means 8.0 < 8.5
    (VersionRange("8.5", "10.3"), "8.5.2-1+cuda11.4", True),  # a Debian package version
    (VersionRange("8.6", "11.x"), "11.0", True),
    (VersionRange("8.6", "11.x"), "11.9.1", True),
    (VersionRange("8.6", "11.x"), "12.0", False),
    (VersionRange("8.6", "11"), "11.3.0.1", True),
    (VersionRange("8.6", "11"), "12", False),
    (VersionRange("8.10", None), "8.9.9", False),        # numeric, not string order
    (VersionRange("8.10", None), "8.10.1", True),
    (VersionRange("8.10", None), "99", True),
    (VersionRange(None, "8.2"), "7.1.3", True),
    (VersionRange(None, "8.2"), "8.2.1.8", True),
    (VersionRange(None, "8.2"), "8.3", False),
    (VersionRange("4.6.1", "4.6.x"), "4.6", False),      # 4.6 = 4.6.0 < 4.6.1
    (VersionRange("4.6.1", "4.6.x"), "4.6.1", True),
    (VersionRange("4.6.1", "4.6.x"), "4.6.6", True),
    (VersionRange("4.6.1", "4.6.x"), "4.7", False),
    (VersionRange("8.2", "8.2"), "8.2.1", True),
    (VersionRange("8.2", "8.2"), "8.1.9", False),
])
def test_version_range_contains(rng, version, inside):
    assert rng.contains(version) is inside


def test_version_range_rejects_garbage():
    with pytest.raises(ValueError):
        VersionRange("8.5", "10.3").contains("latest")


def test_version_range_str():
    assert str(VersionRange("8.5", "10.3")) == "8.5..10.3"
    assert str(VersionRange("8.2", "8.2")) == "8.2"
    assert str(VersionRange(None, "11.x")) == "*..11.x"


# ---------------------------------------------------------------------------------- validation

def _base() -> dict:
    return yaml.safe_load((targets_dir() / "jetson-orin-agx.yaml").read_text()) | {"name": "my-camera",
                                                                                 "aliases": []}


def _write(folder: Path, data: dict | str, name: str = "my-camera.yaml") -> Path:
    path = folder / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def _drop(key):
    def edit(d):
        del d[key]
    return edit


def _set(key, value):
    def edit(d):
        d[key] = value
    return edit


def _set_in(key, sub, value):
    def edit(d):
        d[key][sub] = value
    return edit


def _drop_in(key, sub):
    def edit(d):
        del d[key][sub]
    return edit


def test_a_users_own_file_loads(tmp_path):
    path = _write(tmp_path, _base())
    t = load_target(str(path))
    assert t.name == "my-camera" and t.path == path and t.backend == "tensorrt"


@pytest.mark.parametrize("edit, field", [
    (_drop("backend"), "backend"),
    (_drop("precisions"), "precisions"),
    (_set("backend", "tensorflow"), "backend"),
    (_set("fallback", "tflite"), "fallback"),
    (_set("fallback", "tensorrt"), "fallback"),            # the default itself
    (_set("kind", "fpga"), "kind"),
    (_set("precisions", ["fp32", "bf16"]), "precisions"),
    (_set("precisions", []), "precisions"),
    (_set("precisions", ["fp16", "fp16"]), "precisions"),
    (_set("int8_route", "ptq"), "int8_route"),
    (_set("int8_route", "none"), "int8_route"),              # int8 listed but no route
    (_set("dla_cores", -1), "dla_cores"),
    (_set("dla_cores", 1.5), "dla_cores"),
    (_set("memory_gb", 0), "memory_gb"),
    (_set("workspace_mb", "big"), "workspace_mb"),
    (_set("compute_capability", 8.7), "compute_capability"),  # must be quoted
    (_set("jetpack", None), "jetpack"),                       # a jetson needs one
    (_set("tensorrt", None), "tensorrt"),
    (_set_in("tensorrt", "max", 10.3), "tensorrt.max"),        # YAML number, not a version string
    (_set_in("tensorrt", "min", "eight"), "tensorrt.min"),
    (_set("tensorrt", {"min": "10.3", "max": "8.5"}), "tensorrt"),
    (_set_in("peak", "int8_tops", -5), "peak.int8_tops"),
    (_drop_in("peak", "int8_tops"), "peak.int8_tops"),
    (_set_in("peak", "teraflops", 1), "peak.teraflops"),
    (_set("colour", "green"), "colour"),                       # a typo'd field is not ignored
    (_set("aliases", "jetson-orin"), "aliases"),
    (_set("power_modes", "MAXN"), "power_modes"),
    (_set("cpu_isa", ["avx2"]), "cpu_isa"),                    # a jetson target: not a CPU's
])
def test_bad_values_name_the_file_and_the_field(tmp_path, edit, field):
    data = _base()
    edit(data)
    path = _write(tmp_path, data)
    with pytest.raises(EdgekitError) as err:
        load_target(str(path))
    msg = str(err.value)
    assert msg.startswith(f"{path}: {field}: "), msg
    assert "\n" not in msg


def test_cpu_isa_names_known_instruction_sets(tmp_path):
    data = yaml.safe_load(load_target("cpu").path.read_text()) | {"cpu_isa": ["avx2", "avx512vnni"]}
    path = _write(tmp_path, data)
    with pytest.raises(EdgekitError, match=r"cpu_isa: 'avx512vnni' is not one of"):
        load_target(str(path))


def test_calibration_cache_is_refused_for_tensorrt_11(tmp_path):
    data = _base() | {"int8_route": "calibration-cache", "precisions": ["fp32", "fp16"],
                      "tensorrt": {"min": "10.3", "max": "11.x"}}
    path = _write(tmp_path, data)
    with pytest.raises(EdgekitError, match=r"int8_route: .*TensorRT 11"):
        load_target(str(path))


def test_cpu_target_cannot_use_tensorrt(tmp_path):
    data = yaml.safe_load((targets_dir() / "cpu.yaml").read_text()) | {"backend": "tensorrt"}
    path = _write(tmp_path, data)
    with pytest.raises(EdgekitError, match=rf"^{re.escape(str(path))}: backend: "):
        load_target(str(path))


def test_malformed_yaml_names_the_file(tmp_path):
    path = _write(tmp_path, "name: my-camera\nprecisions: [fp32, fp16\nkind: jetson\n")
    with pytest.raises(EdgekitError) as err:
        load_target(str(path))
    assert str(err.value).startswith(f"{path}: malformed YAML")
    assert "\n" not in str(err.value)


def test_a_list_is_not_a_target(tmp_path):
    path = _write(tmp_path, "- jetson-orin-agx\n- cpu\n")
    with pytest.raises(EdgekitError, match="mapping"):
        load_target(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(EdgekitError, match="not found"):
        load_target(str(tmp_path / "nowhere.yaml"))


def test_unknown_name_lists_names_and_aliases():
    with pytest.raises(EdgekitError) as err:
        load_target("jetson-tx2")
    msg = str(err.value)
    assert "jetson-tx2" in msg
    for name in EXPECTED:
        assert name in msg
    assert "jetson-orin -> jetson-orin-agx" in msg


def test_duplicate_aliases_across_files_are_an_error(tmp_path, monkeypatch):
    _write(tmp_path, _base() | {"name": "cam-a", "aliases": ["line-1"]}, "cam-a.yaml")
    second = _write(tmp_path, _base() | {"name": "cam-b", "aliases": ["line-1"]}, "cam-b.yaml")
    monkeypatch.setattr(targets_mod, "targets_dir", lambda: tmp_path)
    with pytest.raises(EdgekitError) as err:
        list_targets()
    assert str(err.value).startswith(f"{second}: aliases: 'line-1'")


def test_an_alias_may_not_shadow_another_targets_name(tmp_path, monkeypatch):
    _write(tmp_path, _base() | {"name": "cam-a"}, "cam-a.yaml")
    second = _write(tmp_path, _base() | {"name": "cam-b", "aliases": ["cam-a"]}, "cam-b.yaml")
    monkeypatch.setattr(targets_mod, "targets_dir", lambda: tmp_path)
    with pytest.raises(EdgekitError, match=rf"^{re.escape(str(second))}: aliases: "):
        load_target("cam-b")


def test_duplicate_names_across_files_are_an_error(tmp_path, monkeypatch):
    _write(tmp_path, _base() | {"name": "cam-a"}, "a.yaml")
    second = _write(tmp_path, _base() | {"name": "cam-a"}, "b.yaml")
    monkeypatch.setattr(targets_mod, "targets_dir", lambda: tmp_path)
    with pytest.raises(EdgekitError, match=rf"^{re.escape(str(second))}: name: "):
        list_targets()


# ---------------------------------------------------------------------------------- locating files

def test_targets_dir_falls_back_to_the_checkout():
    folder = targets_dir()
    assert (folder / "jetson-orin-agx.yaml").is_file()


def test_targets_dir_prefers_the_installed_package_data(tmp_path, monkeypatch):
    seen = []

    def files(package):
        seen.append(package)
        return tmp_path

    import edgekit.resources

    monkeypatch.setattr(edgekit.resources.importlib.resources, "files", files)
    assert targets_dir() == tmp_path
    assert seen == ["edgekit._targets"]
