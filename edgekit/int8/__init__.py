"""INT8 for every backend: activation ranges (``ranges``), the portable Q/DQ model (``qdq``), the
accuracy-bounded choice of layers kept in float (``accuracy``) and OpenVINO's own quantizer (``nncf``)."""
