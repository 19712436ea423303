"""The last mile: signing keys and signed bundles (what a camera accepts). Flashing cameras and the
line-side runtime build on these (issue 14).

Device-side code (Python 3.6+, no torch): :mod:`.bundle`'s reading and verifying, :mod:`.keys`' public-key
half; writing bundles and making keys happen on the workstation."""
