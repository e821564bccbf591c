"""Decode a container (WebM or Ogg) that arrives in chunks, as a browser's MediaRecorder sends it.

A browser's ``MediaRecorder`` emits a WebM (or Ogg) file piece by piece:
the first chunk holds the header, later ones clusters of Opus packets, and no
chunk is decodable on its own. :class:`ContainerStreamDecoder` feeds the
chunks to one FFmpeg demuxer/decoder (PyAV) that runs on a background thread
and reads from a blocking in-memory pipe; :meth:`~ContainerStreamDecoder.feed`
returns the samples decoded so far, :meth:`~ContainerStreamDecoder.close`
the rest. Memory holds at most one pending chunk plus the decoded samples not
yet taken.

>>> dec = ContainerStreamDecoder(format="webm")       # doctest: +SKIP
>>> for chunk in chunks:                               # doctest: +SKIP
...     for y, rate in dec.feed(chunk): engine.feed(y, rate)
>>> for y, rate in dec.close(): engine.feed(y, rate)   # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from emovox.errors import AudioError, EmptyAudioError, UnsupportedAudioError

__all__ = ["ContainerStreamDecoder", "CONTAINER_STREAM_FORMATS"]

#: Accepted formats -> FFmpeg demuxer name.
CONTAINER_STREAM_FORMATS = {"webm": "matroska", "ogg": "ogg"}
#: First bytes of each format (EBML header, Ogg page): anything else is refused at once.
_MAGIC = {"webm": b"\x1aE\xdf\xa3", "ogg": b"OggS"}


class _Aborted(Exception):
    """Raised inside the decoder thread when the stream is abandoned."""


class _BlockingPipe:
    """A byte pipe: ``write`` from one thread, blocking ``read`` from another.

    ``read`` returns as soon as any byte is available (FFmpeg accepts short
    reads), ``b""`` after :meth:`close_write` once drained.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._closed = False
        self._aborted = False
        self.reader_waiting = False

    def write(self, data: bytes) -> None:
        with self._cond:
            self._buf += data
            self._cond.notify_all()

    def close_write(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def abort(self) -> None:
        with self._cond:
            self._aborted = True
            self._cond.notify_all()

    def read(self, size: int = -1) -> bytes:
        with self._cond:
            while not self._buf and not self._closed and not self._aborted:
                self.reader_waiting = True
                self._cond.notify_all()
                self._cond.wait()
            self.reader_waiting = False
            if self._aborted:
                raise _Aborted()
            n = len(self._buf) if size is None or size < 0 else min(size, len(self._buf))
            out = bytes(self._buf[:n])
            del self._buf[:n]
            return out

    def wait_drained(self, timeout_s: float, done: Callable[[], bool]) -> None:
        """Block until the reader waits on an empty pipe (it decoded all it could) or ``done()``."""
        with self._cond:
            self._cond.wait_for(lambda: (not self._buf and self.reader_waiting) or done(), timeout_s)

    def notify(self) -> None:
        with self._cond:
            self._cond.notify_all()


class ContainerStreamDecoder:
    """Incremental decoder of a WebM/Ogg byte stream.

    Parameters
    ----------
    format : str
        ``"webm"`` (Matroska/WebM, e.g. Opus from Chrome/Firefox) or ``"ogg"``.
    wait_s : float
        Longest time :meth:`feed` waits for the decoder to consume a chunk.

    Notes
    -----
    Not thread-safe: one caller feeds one decoder. Decoding errors surface
    as :class:`~emovox.errors.AudioError` from the next :meth:`feed` or
    :meth:`close`.
    """

    def __init__(self, *, format: str = "webm", wait_s: float = 5.0) -> None:
        if format not in CONTAINER_STREAM_FORMATS:
            raise UnsupportedAudioError(
                f"container format {format!r} cannot be streamed: use one of {', '.join(CONTAINER_STREAM_FORMATS)}"
            )
        self.format = format
        self.wait_s = float(wait_s)
        self._pipe = _BlockingPipe()
        self._out: list[tuple[np.ndarray, int]] = []
        self._lock = threading.Lock()
        self._error: AudioError | None = None
        self._done = False
        self._thread: threading.Thread | None = None
        self.bytes_in = 0
        self.samples_out = 0
        self._head = b""

    # ------------------------------------------------------------------ public
    def feed(self, data: bytes) -> list[tuple[np.ndarray, int]]:
        """Add a chunk; return the ``(samples (n,) float32 mono, sample_rate_hz)`` decoded so far."""
        self._raise_error()
        if self._done:
            raise AudioError(f"the {self.format} stream already ended: start a new stream")
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="emovox-container-decode", daemon=True)
            self._thread.start()
        if data:
            self._check_head(bytes(data[:4]))
            self.bytes_in += len(data)
            self._pipe.write(bytes(data))
            self._pipe.wait_drained(self.wait_s, lambda: self._done)
        self._raise_error()
        return self._take()

    def close(self, *, timeout_s: float = 30.0) -> list[tuple[np.ndarray, int]]:
        """End of input: decode what is left and return it."""
        self._pipe.close_write()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._raise_error()
        if self._thread is not None and self.samples_out == 0 and not self._out:
            raise EmptyAudioError(f"the {self.format} stream held no audio samples: send a recording")
        return self._take()

    def abort(self) -> None:
        """Abandon the stream (the client left): stop the decoder thread."""
        self._pipe.abort()
        if self._thread is not None:
            self._thread.join(5.0)

    # ------------------------------------------------------------------ internals
    def _check_head(self, data: bytes) -> None:
        magic = _MAGIC[self.format]
        if len(self._head) >= len(magic):
            return
        self._head = (self._head + data)[: len(magic)]
        if not magic.startswith(self._head):
            self._error = UnsupportedAudioError(
                f"the {self.format} stream does not start like {self.format} (first bytes "
                f"{self._head.hex()}, expected {magic.hex()}): send the recorder's chunks from the first one"
            )
            self._pipe.abort()
            raise self._error

    def _take(self) -> list[tuple[np.ndarray, int]]:
        with self._lock:
            out, self._out = self._out, []
        return out

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        import av

        from emovox.audio.decode import DECODE_ERRORS, frame_to_array
        from emovox.audio.effects import to_mono

        name = f"{self.format} stream"
        try:
            with av.open(
                self._pipe,
                mode="r",
                format=CONTAINER_STREAM_FORMATS[self.format],
                metadata_errors="ignore",
                buffer_size=4096,
                options={"probesize": "4096", "analyzeduration": "0"},
            ) as container:
                if not container.streams.audio:
                    raise UnsupportedAudioError(f"the {name} has no audio track: record audio")
                stream = container.streams.audio[0]
                for frame in container.decode(stream):
                    if frame.samples == 0:
                        continue
                    rate = int(frame.sample_rate or stream.codec_context.sample_rate or 0)
                    if rate <= 0:
                        raise UnsupportedAudioError(f"the {name} does not state its sample rate")
                    y = np.ascontiguousarray(to_mono(frame_to_array(frame)))
                    if not np.isfinite(y).all():
                        y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
                    with self._lock:
                        self._out.append((y, rate))
                        self.samples_out += y.size
        except _Aborted:
            pass
        except AudioError as error:
            self._error = error
        except DECODE_ERRORS as error:
            where = "after decoding some audio" if self.samples_out else "before any audio"
            self._error = UnsupportedAudioError(
                f"the {name} could not be decoded {where} (its data is not {self.format} audio or is damaged): "
                f"send {self.format} chunks exactly as MediaRecorder produces them, starting with the first"
            )
            self._error.__cause__ = error  # the decoder's own message, for logs and debugging
        except Exception as error:  # noqa: BLE001 -- a decoder thread must never die silently
            self._error = UnsupportedAudioError(
                f"the {name} could not be decoded: send {self.format} chunks exactly as MediaRecorder produces them"
            )
            self._error.__cause__ = error
        finally:
            self._done = True
            self._pipe.notify()
