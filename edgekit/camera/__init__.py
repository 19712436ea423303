"""The camera side: everything that runs on a camera beside the line, one package that ships whole as
``edgekit-device.pyz`` (:mod:`.pack`) and runs on the Python each JetPack ships (3.6+), importing only numpy,
OpenCV, ``cryptography`` and the slot's runtime (TensorRT with pycuda or cuda-python, OpenVINO or ONNX Runtime).

- :mod:`.trust`, :mod:`.bundle`, :mod:`.slots` the keys it trusts, a signed bundle's check, the A/B slots;
- :mod:`.pipeline`, :mod:`.preprocess`, :mod:`.post` what a model's input and outputs mean (``pipeline.json``);
- :mod:`.model` a slot as the line runs it; :mod:`.golden` the check that it is the model validation ran;
- :mod:`.sources`, :mod:`.runtime`, :mod:`.status`, :mod:`.annotate` frames in, one JSON line per frame out,
  Prometheus metrics, the model swapped when the active slot changes;
- :mod:`.app` the program's commands (``run``, ``verify``, ``golden``, ``activate``, ``rollback``, ``status``;
  ``info``, ``build``, ``bench`` on a Jetson).

The workstation (``edgekit.deploy``: keys, signing, flashing; the stages) imports this package, never the
reverse: the import contracts in ``pyproject.toml`` hold it (``lint-imports``).
"""
