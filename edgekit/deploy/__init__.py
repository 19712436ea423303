"""The workstation's side of the last mile, from a validated build to cameras:

- :mod:`.keys` Ed25519 signing keys (the public halves a camera trusts: :mod:`edgekit.camera.trust`);
- :mod:`.bundle` writing the signed bundle (the camera checks and unpacks it: :mod:`edgekit.camera.bundle`);
- :mod:`.fleet` the inventory, ``cameras.yaml``;
- :mod:`.flash` flashing, rollback and status over SSH, many cameras at once;
- :mod:`.loopback` an OpenSSH server on 127.0.0.1 as a stand-in camera, for rehearsals and tests.

What runs on the camera (slots, the golden check, ``run``) is :mod:`edgekit.camera`, which imports nothing
from here.
"""
