"""The line side: what runs on a camera beside the line.

- :mod:`.golden` a bundle's golden images and the check that the camera runs the validated model;
- :mod:`.slot_runner` the runner of a camera's slot (its artifact, or the engine built on the camera);
- :mod:`.model` a slot as the line runs it: pre-processing, runner, post-processing, the JSON answer;
- :mod:`.sources` frames from a camera, a video, an RTSP/GStreamer pipeline or an image folder;
- :mod:`.status` the Prometheus counters and the local status endpoint;
- :mod:`.runtime` ``edgekit run``: frames in, one JSON line per frame out, the model swapped when the
  active slot changes.

``golden`` and ``slot_runner`` are device-side code (Python 3.6+, numpy): they ship in every kit's
``edgekit-device.pyz``, which flash runs on the camera. The rest needs edgekit installed on the camera.
"""
