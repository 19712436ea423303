"""Frames for the line: a camera index, a video file, an RTSP/HTTP stream or GStreamer pipeline, or a
folder of images, all through OpenCV, read on a thread of their own so that decoding overlaps inference.

A live source (camera, stream, pipeline) never waits for the model: when the model falls behind, the
oldest waiting frame is dropped and counted. A file or folder is read completely, every frame in order.
A frame that cannot be decoded is counted and skipped, never fatal; a video whose reads keep failing is
taken to have ended, and a live stream that keeps failing is reopened.
"""
import queue
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import cv2
import numpy as np

from edgekit.errors import EdgekitError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
STREAM_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://")
FAILED_READS = 25          # consecutive failed reads that end a video (or reopen a live stream)


class Frame:
    __slots__ = ("index", "time", "image", "prepared")

    def __init__(self, index: int, time: float, image: Optional[np.ndarray], prepared: Any = None) -> None:
        self.index = index          # frame number in the source, from 0 (skipped frames keep their numbers)
        self.time = time            # wall-clock time it was read (seconds since the epoch)
        self.image = image          # None: the frame could not be decoded
        self.prepared = prepared    # what ``prefetch``'s ``prepare`` made of the image on the reader thread


class Source:
    """Iterate for :class:`Frame`s; ``dropped`` counts frames a live source dropped for a slow model."""
    live = False

    def __init__(self, spec: str) -> None:
        self.spec, self.dropped = spec, 0

    def frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class ImageFolder(Source):
    def __init__(self, spec: str) -> None:
        super().__init__(spec)
        self.files = sorted(p for p in Path(spec).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise EdgekitError(f"{spec}: no images ({', '.join(IMAGE_SUFFIXES)})")

    def frames(self) -> Iterator[Frame]:
        for i, path in enumerate(self.files):
            yield Frame(i, time.time(), read_image(path))


def read_image(path: Path) -> Optional[np.ndarray]:
    """A BGR image as a capture gives it, or None when it cannot be decoded whole: OpenCV fills a JPEG cut
    short with grey and answers it without a word, so a JPEG must end with its end-of-image marker."""
    data = Path(path).read_bytes()
    if data[:2] == b"\xff\xd8" and not data.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9"):
        return None
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


class Capture(Source):
    """OpenCV's VideoCapture: a video file, a camera index, a stream URL or a GStreamer pipeline."""

    def __init__(self, spec: str, live: bool, api: int = cv2.CAP_ANY) -> None:
        super().__init__(spec)
        self.live, self.api = live, api
        self.cap = self._open()

    def _open(self) -> cv2.VideoCapture:
        target = int(self.spec) if self.spec.isdigit() else self.spec
        cap = cv2.VideoCapture(target, self.api)
        if not cap.isOpened():
            raise EdgekitError(f"{self.spec}: OpenCV cannot open this source")
        return cap

    def frames(self) -> Iterator[Frame]:
        index, failed = 0, []          # failed reads wait: undecodable frames if a good one follows, else the end
        while True:
            ok, image = self.cap.read()
            if ok and image is not None:
                yield from failed
                failed = []
                yield Frame(index, time.time(), image)
                index += 1
                continue
            failed.append(Frame(index, time.time(), None))
            index += 1
            if not self.live and self._at_end():
                return
            if len(failed) >= FAILED_READS:
                if not self.live:
                    return
                yield from failed
                failed = []
                self.cap.release()
                time.sleep(1.0)
                try:
                    self.cap = self._open()
                except EdgekitError:
                    continue

    def _at_end(self) -> bool:
        count = self.cap.get(cv2.CAP_PROP_FRAME_COUNT)
        return count <= 0 or self.cap.get(cv2.CAP_PROP_POS_FRAMES) >= count

    def close(self) -> None:
        self.cap.release()


def open_source(spec: str) -> Source:
    """The source ``spec`` names (checked now: a missing file or an unopenable device is one line)."""
    if spec.isdigit():
        return Capture(spec, live=True)
    if spec.startswith(STREAM_PREFIXES):
        return Capture(spec, live=True)
    if "!" in spec:                                     # a GStreamer pipeline ending in appsink
        return Capture(spec, live=True, api=cv2.CAP_GSTREAMER)
    path = Path(spec)
    if path.is_dir():
        return ImageFolder(spec)
    if path.is_file():
        return Capture(spec, live=False)
    raise EdgekitError(f"{spec}: no such file or folder (a source is a camera index, a video file, an image "
                       "folder, an rtsp:// URL or a GStreamer pipeline)")


def prefetch(source: Source, depth: int = 4, prepare: Optional[Callable[[np.ndarray], Any]] = None) -> Iterator[Frame]:
    """The source's frames read ahead on a thread, each decoded image handed to ``prepare`` there too
    (``frame.prepared``: pre-processing overlaps inference). A live source drops its oldest waiting frame
    rather than wait (``source.dropped``); a file waits for the model."""
    frames = queue.Queue(maxsize=depth)          # type: queue.Queue
    done = object()
    stop = threading.Event()
    failure = []                                 # type: List[BaseException]

    def read() -> None:
        try:
            for frame in source.frames():
                if stop.is_set():
                    return
                if prepare is not None and frame.image is not None:
                    try:
                        frame.prepared = prepare(frame.image)
                    except (cv2.error, ValueError):      # a frame the pre-processing cannot take: skipped
                        frame.image = None
                while not stop.is_set():
                    try:
                        frames.put(frame, timeout=0.1) if not source.live else frames.put_nowait(frame)
                        break
                    except queue.Full:
                        if source.live:                 # the newest frame matters; the oldest waiting goes
                            try:
                                frames.get_nowait()
                                source.dropped += 1
                            except queue.Empty:
                                pass
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            failure.append(exc)
        finally:
            if not stop.is_set():
                frames.put(done)

    reader = threading.Thread(target=read, name="edgekit-frames", daemon=True)
    reader.start()
    try:
        while True:
            item = frames.get()
            if item is done:
                break
            yield item
        if failure:
            raise failure[0]
    finally:
        stop.set()
        reader.join(timeout=2)
        source.close()
