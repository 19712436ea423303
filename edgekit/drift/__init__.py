"""Drift on the workstation: the reference a bundle carries (:mod:`.reference`) and the report of a line's log
(:mod:`.report`); the watch itself runs on the camera (:mod:`edgekit.camera.drift`)."""
