"""The last mile, from a validated build to cameras:

- :mod:`.keys` Ed25519 signing keys (workstation) and the public keys a camera trusts;
- :mod:`.bundle` the signed bundle: written on the workstation, checked and unpacked on the camera;
- :mod:`.slots` a camera's verified bundles, the active one switched by one atomic rename, rollback;
- :mod:`.fleet` the inventory, ``cameras.yaml``;
- :mod:`.flash` flashing, rollback and status over SSH, many cameras at once;
- :mod:`.loopback` an OpenSSH server on 127.0.0.1 as a stand-in camera, for rehearsals and tests.

``keys`` (its public half), ``bundle`` and ``slots`` are device-side code (Python 3.6+, no torch): they
ship in every kit's ``edgekit-device.pyz``. What runs beside the line (the golden check, ``edgekit run``) is
:mod:`edgekit.line`.
"""
