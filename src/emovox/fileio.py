"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every writer of user-visible files (reports, plots, manifests, model configs,
checkpoints) goes through here. The temporary file lives in the destination
folder, so the final ``os.replace`` never crosses file systems; file and
folder are fsynced, so the rename survives a power cut. Torch-free.
"""

from __future__ import annotations

import errno
import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from emovox.errors import EmovoxError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "atomic_folder",
    "atomic_output",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_png",
    "fsync_dir",
    "file_mode",
    "as_os_error",
    "WriteError",
    "resolves_inside",
    "check_inside",
]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file + fsync + ``os.replace``); returns the path."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


@contextmanager
def atomic_output(path: str | os.PathLike, *, durable: bool = True) -> Iterator[Path]:
    """Give a writer a temporary path beside ``path``; on success it replaces ``path`` atomically.

    For libraries that write files themselves (e.g. safetensors' ``save_file``),
    so large outputs need no copy in memory. On an exception the temporary
    file is removed and ``path`` is left as it was. ``durable=False`` skips
    the fsyncs, for files that can be rebuilt (cache entries): still atomic,
    but a power cut may lose the newest ones.

    >>> with atomic_output("out.bin") as tmp:   # doctest: +SKIP
    ...     save_file(tensors, str(tmp))
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise _write_error(path, error) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        if durable:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) or type(error).__name__ == "SafetensorError":
            raise _write_error(path, error) from None
        raise
    if durable:
        fsync_dir(path.parent)


class WriteError(EmovoxError, OSError):
    """A file could not be written (disk full, file too large, read-only, no permission).

    An :class:`~emovox.errors.EmovoxError` (the CLI prints one line, exit 2)
    and an :class:`OSError` (``errno``/``strerror`` kept for callers that
    catch those). The file that was there before is left untouched.
    """

    def __init__(self, errno_: int | None, strerror: str, message: str) -> None:
        super().__init__(errno_, strerror)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _write_error(path: Path, error: BaseException) -> OSError:
    if isinstance(error, WriteError):
        return error
    reason = as_os_error(error)
    strerror = reason.strerror or str(reason)
    hint = (
        "free some space or choose another path"
        if reason.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
        else "choose a writable path"
    )
    return WriteError(
        reason.errno,
        strerror,
        f"cannot write {str(path)!r}: {strerror}; {hint} (a file already there is left as it was)",
    )


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_png(path: str | os.PathLike, fig: Figure, *, dpi: int = 100) -> Path:
    """Render a matplotlib figure to PNG in memory, then write it atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue())


@contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Give a writer an empty staging folder beside ``path``; on success it replaces ``path`` as a whole.

    For outputs that are several files read together (a model artifact:
    weights, config, ONNX): a reader sees the old folder or the new one, never
    a mix. The writer fsyncs its files; the swap is two renames (the old
    folder aside, the new one in), and the old folder is restored if the
    second fails. On an exception the staging folder is removed and ``path``
    is left as it was.

    >>> with atomic_folder("runs/model") as staging:   # doctest: +SKIP
    ...     (staging / "config.json").write_text("{}")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    staging, old = root / "new", root / "old"
    keep = False  # the old folder could not be put back: it stays in root, named in the error
    try:
        staging.mkdir()
        yield staging
        os.chmod(staging, file_mode(directory=True))
        if path.exists():
            os.replace(path, old)
        try:
            os.replace(staging, path)
        except OSError as error:
            if old.exists():
                try:
                    os.replace(old, path)
                except OSError:
                    keep = True
                    raise WriteError(
                        error.errno,
                        error.strerror or str(error),
                        f"cannot replace {str(path)!r}: {error.strerror or error}; its previous contents are "
                        f"in {str(old)!r}",
                    ) from None
            raise
        fsync_dir(path.parent)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def fsync_dir(folder: str | os.PathLike) -> None:
    """fsync a directory entry (no-op where the platform cannot)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def file_mode(*, directory: bool = False) -> int:
    """Permission bits a plain ``open(path, "w")`` (or ``mkdir``) would give: ``0o666`` (``0o777``) minus the umask.

    Temp files and folders (``mkstemp``, ``mkdtemp``) and some writers
    (safetensors' ``save_file``) create them owner-only (``0o600``/``0o700``);
    anything another user or a service account must read is set to this.
    """
    return (0o777 if directory else 0o666) & ~_umask()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_RUST_IO_ERROR = re.compile(r"I/O error: (?P<reason>.*?) \(os error (?P<errno>\d+)\)")


def as_os_error(error: BaseException) -> OSError:
    """``error`` as an :class:`OSError` with ``errno``/``strerror`` when it reports one.

    safetensors' writer raises ``SafetensorError("Error while serializing: I/O
    error: No space left on device (os error 28)")`` rather than ``OSError``;
    callers that turn write failures into one-line messages get the reason back.
    """
    if isinstance(error, OSError):
        return error
    match = _RUST_IO_ERROR.search(str(error))
    if match:
        return OSError(int(match["errno"]), match["reason"])
    return OSError(str(error).splitlines()[0] if str(error) else type(error).__name__)


def resolves_inside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """Whether ``path``, with every symbolic link resolved, lies inside ``folder`` (also resolved).

    Model artifacts come from strangers: a ``model.onnx`` that is a link to
    ``/etc/shadow`` or to another user's files must not be read through them.
    """
    real_folder = os.path.realpath(folder)
    real = os.path.realpath(path)
    return real == real_folder or real.startswith(real_folder.rstrip(os.sep) + os.sep)


def check_inside(path: str | os.PathLike, folder: str | os.PathLike) -> None:
    """Refuse a model-artifact file that is a symbolic link leading outside its folder (:class:`ModelError`)."""
    if os.path.lexists(path) and not resolves_inside(path, folder):
        from emovox.errors import ModelError

        raise ModelError(
            f"{str(path)!r} is a symbolic link to {os.path.realpath(path)!r}, outside the model folder: "
            "emovox reads a model only from inside its folder; copy the file into the folder instead"
        )
