"""OpenVINO's runtime through its C API (``libopenvino_c``, shipped in every OpenVINO wheel and archive): compile
an IR and infer, without importing the ``openvino`` Python package. That package imports its model converter,
telemetry (with OpenSSL) and the TensorFlow frontend on ``import openvino``: 27 MB of a camera's memory before
any model is read, against 6 MB for the C library (benchmarks/results/line-memory-sdc-openvino-capi.md).

Declared from the C API headers (``openvino/c/ov_core.h``, ``ov_compiled_model.h``, ``ov_infer_request.h``,
``ov_tensor.h``, ``ov_partial_shape.h``, ``ov_common.h``). One break between releases matters here: 2026.0
removed ``UNDEFINED`` from ``ov_element_type_e`` (openvinotoolkit/openvino#32573), so each element type's code
is one lower from 2026 on (:func:`element_types`). Device-side code: Python 3.6+.
"""
import ctypes
import ctypes.util
import glob
import importlib.util
import os
from ctypes import POINTER, byref, c_char_p, c_int, c_int64, c_size_t, c_void_p
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from edgekit.errors import EdgekitError


class Shape(ctypes.Structure):                  # ov_shape_t
    _fields_ = [("rank", c_int64), ("dims", POINTER(c_int64))]


class Dimension(ctypes.Structure):              # ov_dimension_t (and ov_rank_t)
    _fields_ = [("min", c_int64), ("max", c_int64)]


class PartialShape(ctypes.Structure):           # ov_partial_shape_t
    _fields_ = [("rank", Dimension), ("dims", POINTER(Dimension))]


class Version(ctypes.Structure):                # ov_version_t
    _fields_ = [("buildNumber", c_char_p), ("description", c_char_p)]


H = c_void_p                                    # every opaque handle (ov_core_t*, ov_model_t*, ...)
# argument types; each returns ov_status_e unless _RETURNS says otherwise. ov_core_compile_model and
# ov_core_compile_model_from_file are variadic: their (key, value) property strings follow these.
_SIGNATURES = {
    "ov_get_openvino_version": [POINTER(Version)],
    "ov_version_free": [POINTER(Version)],
    "ov_get_error_info": [c_int],
    "ov_get_last_err_msg": [],
    "ov_core_create": [POINTER(H)],
    "ov_core_free": [H],
    "ov_core_read_model": [H, c_char_p, c_char_p, POINTER(H)],
    "ov_model_free": [H],
    "ov_model_const_input_by_index": [H, c_size_t, POINTER(H)],
    "ov_const_port_get_shape": [H, POINTER(Shape)],
    "ov_output_const_port_free": [H],
    "ov_model_reshape_single_input": [H, PartialShape],
    "ov_partial_shape_create_static": [c_int64, POINTER(c_int64), POINTER(PartialShape)],
    "ov_partial_shape_free": [POINTER(PartialShape)],
    "ov_core_compile_model": [H, H, c_char_p, c_size_t, POINTER(H)],
    "ov_core_compile_model_from_file": [H, c_char_p, c_char_p, c_size_t, POINTER(H)],
    "ov_compiled_model_outputs_size": [H, POINTER(c_size_t)],
    "ov_compiled_model_get_property": [H, c_char_p, POINTER(H)],
    "ov_free": [H],
    "ov_compiled_model_create_infer_request": [H, POINTER(H)],
    "ov_compiled_model_free": [H],
    "ov_infer_request_get_input_tensor_by_index": [H, c_size_t, POINTER(H)],
    "ov_infer_request_get_output_tensor_by_index": [H, c_size_t, POINTER(H)],
    "ov_infer_request_infer": [H],
    "ov_infer_request_free": [H],
    "ov_tensor_get_shape": [H, POINTER(Shape)],
    "ov_tensor_get_element_type": [H, POINTER(c_int)],
    "ov_tensor_data": [H, POINTER(H)],
    "ov_tensor_free": [H],
    "ov_shape_free": [POINTER(Shape)],
}
_RETURNS = {"ov_get_error_info": c_char_p, "ov_get_last_err_msg": c_char_p}
_RETURNS.update((name, None) for name in (          # void
    "ov_free", "ov_version_free", "ov_core_free", "ov_model_free", "ov_output_const_port_free", "ov_partial_shape_free",
    "ov_compiled_model_free", "ov_infer_request_free", "ov_tensor_free"))
# numpy's dtype for each of ov_element_type_e's first codes as 2026 numbers them (before 2026 each is one
# higher, 0 being UNDEFINED); None: a type numpy does not hold
_ELEMENTS_2026 = (None, "bool", None, "float16", "float32", "float64", None, "int8", "int16", "int32", "int64")

_FREE = {"_request": "ov_infer_request_free", "_compiled": "ov_compiled_model_free", "_core": "ov_core_free"}
_lib = None


def library_path() -> str:
    """``libopenvino_c`` of the installed ``openvino`` wheel (its ``libs/`` folder), else the system's."""
    spec = importlib.util.find_spec("openvino")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for pattern in ("libopenvino_c.so*", "libopenvino_c*.dylib", "openvino_c.dll"):
            found = sorted(glob.glob(os.path.join(folder, "libs", pattern)))
            if found:
                return found[0]
    found = ctypes.util.find_library("openvino_c")
    if found is None:
        raise EdgekitError("OpenVINO's C library (libopenvino_c) is not installed here: pip install openvino")
    return found


def library() -> ctypes.CDLL:
    """The C library with its functions declared; loaded once per process."""
    global _lib
    if _lib is None:
        path = library_path()
        try:
            lib = ctypes.CDLL(path)
        except OSError as exc:
            raise EdgekitError("{}: cannot load OpenVINO's C library ({})".format(path, exc)) from exc
        for name, args in _SIGNATURES.items():
            function = getattr(lib, name, None)
            if function is None:
                raise EdgekitError("{}: OpenVINO's C library lacks {}: OpenVINO 2023.1 or newer is needed".format(
                    path, name))
            function.argtypes = args
            function.restype = _RETURNS.get(name, c_int)
        _lib = lib
    return _lib


def check(status: int, what: str) -> None:
    """Raise the library's own message (its last line) when a call did not return OK."""
    if status != 0:
        lib = library()
        message = (lib.ov_get_last_err_msg() or lib.ov_get_error_info(status) or b"").decode("utf-8", "replace")
        lines = [line.strip() for line in message.splitlines()
                 if line.strip() and not line.startswith(("Exception from", "Check '"))]
        raise EdgekitError("{}: {}".format(what, lines[-1][:300] if lines else "OpenVINO status {}".format(status)))


def version() -> str:
    """The library's build number, e.g. ``2026.4.1-22982-e213a147257-releases/2026/4``."""
    lib = library()
    v = Version()
    check(lib.ov_get_openvino_version(byref(v)), "OpenVINO's version")
    try:
        return v.buildNumber.decode()
    finally:
        lib.ov_version_free(byref(v))


def element_types(build: str) -> Dict[int, Optional[str]]:
    """ov_element_type_e code -> numpy dtype name, for a library of OpenVINO ``build``."""
    shift = 0 if int(build.split(".")[0]) >= 2026 else 1
    return {code + shift: name for code, name in enumerate(_ELEMENTS_2026)}


class CompiledModel:
    """An IR compiled for the CPU with ``config`` (property name -> value), one infer request. ``batch``: the
    model reshaped to that batch first; ``cache``: a folder for OpenVINO's compiled blobs (the next load of the
    same file imports its blob instead of compiling; a blob that fails to import is compiled again)."""

    def __init__(self, path: Path, config: Dict[str, str], batch: Optional[int] = None,
                 cache: Optional[Path] = None) -> None:
        self._lib = lib = library()
        self._types = element_types(version())
        self._core, self._compiled, self._request = H(), H(), H()
        what = "{}: OpenVINO cannot load it".format(path)
        if cache is not None:
            config = dict(config, CACHE_DIR=str(cache))
        pairs = [c_char_p(str(part).encode()) for item in sorted(config.items()) for part in item]
        try:
            check(lib.ov_core_create(byref(self._core)), "OpenVINO")
            if batch is None:       # one call: with a cache, the model is not even read when its blob is there
                check(lib.ov_core_compile_model_from_file(self._core, str(path).encode(), b"CPU", len(pairs),
                                                          byref(self._compiled), *pairs), what)
            else:
                self._compile_for(path, batch, pairs, what)
            check(lib.ov_compiled_model_create_infer_request(self._compiled, byref(self._request)), what)
            count = c_size_t()
            check(lib.ov_compiled_model_outputs_size(self._compiled, byref(count)), what)
            self.outputs = count.value
            self.from_cache = cache is not None and self._loaded_from_cache()
            self._input = self._tensor("ov_infer_request_get_input_tensor_by_index", 0)
            self.input_shape = self._input.shape
        except BaseException:
            self.close()
            raise

    def _compile_for(self, path: Path, batch: int, pairs: List[c_char_p], what: str) -> None:
        """Read the IR, give its input ``batch`` rows, compile it."""
        lib, model, port = self._lib, H(), H()
        check(lib.ov_core_read_model(self._core, str(path).encode(), None, byref(model)), what)
        try:
            check(lib.ov_model_const_input_by_index(model, 0, byref(port)), what)
            shape = Shape()
            try:
                check(lib.ov_const_port_get_shape(port, byref(shape)), what)
                dims = (c_int64 * shape.rank)(*shape.dims[:shape.rank])
                lib.ov_shape_free(byref(shape))
            finally:
                lib.ov_output_const_port_free(port)
            if batch != dims[0]:
                dims[0] = batch
                partial = PartialShape()
                check(lib.ov_partial_shape_create_static(len(dims), dims, byref(partial)), what)
                try:
                    check(lib.ov_model_reshape_single_input(model, partial), what)
                finally:
                    lib.ov_partial_shape_free(byref(partial))
            check(lib.ov_core_compile_model(self._core, model, b"CPU", len(pairs), byref(self._compiled), *pairs),
                  what)
        finally:
            lib.ov_model_free(model)

    def _loaded_from_cache(self) -> bool:
        """Whether the model was imported from a compiled blob (OpenVINO's LOADED_FROM_CACHE; False where the
        library does not say)."""
        value = H()
        if self._lib.ov_compiled_model_get_property(self._compiled, b"LOADED_FROM_CACHE", byref(value)) != 0:
            return False
        try:
            return ctypes.string_at(value.value).decode() in ("YES", "true", "1")
        finally:
            self._lib.ov_free(value)

    def _tensor(self, getter: str, index: int) -> np.ndarray:
        """The request's tensor as a numpy array over its memory (valid while the request lives)."""
        lib, tensor = self._lib, H()
        check(getattr(lib, getter)(self._request, index, byref(tensor)), "OpenVINO tensor")
        try:
            shape, kind, data = Shape(), c_int(), H()
            check(lib.ov_tensor_get_shape(tensor, byref(shape)), "OpenVINO tensor")
            try:
                dims = tuple(shape.dims[i] for i in range(shape.rank))
            finally:
                lib.ov_shape_free(byref(shape))
            check(lib.ov_tensor_get_element_type(tensor, byref(kind)), "OpenVINO tensor")
            check(lib.ov_tensor_data(tensor, byref(data)), "OpenVINO tensor")
        finally:
            lib.ov_tensor_free(tensor)
        dtype = self._types.get(kind.value)
        if dtype is None:
            raise EdgekitError("OpenVINO tensor of element type {} (C API code): not one numpy holds".format(
                kind.value))
        size = int(np.prod(dims)) * np.dtype(dtype).itemsize
        return np.frombuffer((ctypes.c_char * size).from_address(data.value), dtype).reshape(dims)

    def infer(self, batch: np.ndarray) -> List[np.ndarray]:
        if tuple(batch.shape) != self.input_shape:
            raise EdgekitError("batch of shape {} for a model compiled for {}".format(tuple(batch.shape),
                                                                                     self.input_shape))
        np.copyto(self._input, batch, casting="same_kind")
        check(self._lib.ov_infer_request_infer(self._request), "OpenVINO inference")
        return [self._tensor("ov_infer_request_get_output_tensor_by_index", i).copy() for i in range(self.outputs)]

    def close(self) -> None:
        """Release the request, the compiled model and the core (again: nothing)."""
        self._input = None
        for name in ("_request", "_compiled", "_core"):
            handle = getattr(self, name)
            if handle.value:
                getattr(self._lib, _FREE[name])(handle)
                setattr(self, name, H())

    def __del__(self) -> None:
        if getattr(self, "_core", None) is not None:
            self.close()
