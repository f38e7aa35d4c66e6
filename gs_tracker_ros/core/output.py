"""Writing outputs whole or not at all, with one-line errors that name the path and the cause.

Every file (and bag folder) the project writes goes through :class:`AtomicOutput`: the writer
writes to a temporary name in the same folder (``.NAME.PID.part.SUFFIX``, so libraries that pick
the format from the suffix still see it), which is renamed to the final name once complete and
removed on any failure. A reader never sees a truncated file, and a failed command leaves nothing
behind. :func:`check_output` checks that an output can be written before the work starts.

An ``OSError`` while writing or renaming becomes an :class:`~gs_tracker_ros.core.errors.OutputError`
such as ``cannot write out/tracks.npz: no space left on device``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from .errors import OutputError


def os_error_text(err: OSError) -> str:
    """The cause of an ``OSError`` in a few words, e.g. ``no space left on device``."""
    text = err.strerror or str(err) or type(err).__name__
    return text[:1].lower() + text[1:]


def _remove(path: Path) -> None:
    """Delete a file or folder tree if it exists (best effort: used while already failing)."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def temporary_name(path: Path, tag: str = "part") -> Path:
    """``folder/.NAME.PID.TAG.SUFFIX``: hidden, unique to this process, same suffix as ``path``."""
    return path.with_name(f".{path.name}.{os.getpid()}.{tag}{path.suffix}")


def _is_special(path: Path) -> bool:
    """Whether ``path`` is a device (``/dev/stdout``, ``/dev/full``: anything under ``/dev``) or
    another existing path that is neither a regular file nor a folder (a FIFO): it is written in
    place, never replaced."""
    absolute = Path(os.path.abspath(path))
    return absolute.parts[:2] == ("/", "dev") or (path.exists() and not path.is_file() and not path.is_dir())


def check_output(path: str | os.PathLike, option: str, folder: bool = False) -> Path:
    """Check before any work that ``path`` can be written; create its parent folder if missing.

    ``option`` names the path in the error (e.g. ``--out``); ``folder`` is True for outputs that
    are folders (bags). The check writes and removes a probe file in the parent folder, so it also
    catches read-only file systems and folders that only ``root`` could bypass by permission bits.
    Raises :class:`OutputError`.
    """
    path = Path(path).expanduser()
    parent = path.parent
    if path.is_dir() and not folder:
        raise OutputError(f"{option} {path} is a folder; give a file name")
    if folder and path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path} is a file; give a folder name")
    if path.exists() and not path.is_dir() and not os.access(path, os.W_OK):
        raise OutputError(f"{option} {path} exists and is not writable")
    if _is_special(path):
        return path  # written in place (see AtomicOutput)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputError(f"{option} {path}: {parent} is not a folder") from None
    except OSError as err:
        raise OutputError(f"{option} {path}: cannot create the folder {parent}: {os_error_text(err)}") from None
    probe = temporary_name(path, "probe")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as err:
        raise OutputError(f"{option} {path}: cannot write in the folder {parent}: {os_error_text(err)}") from None
    os.close(fd)
    _remove(probe)
    return path


class AtomicOutput:
    """A file or folder written under a temporary name and renamed to ``path`` when complete.

    As a context manager it yields the temporary path; leaving the block normally renames it to
    ``path`` (replacing an existing file; an existing folder is replaced only after the new one is
    complete), leaving it with an exception removes it. An ``OSError`` on the way becomes an
    :class:`OutputError` naming ``path``. Writers with their own open / close life (a video, a
    bag) call :meth:`commit` / :meth:`discard` themselves.

    The parent folder is created when missing. A file's temporary name is ``.NAME.PID.part.SUFFIX``
    beside it; a symbolic link is followed (its target is replaced), and a device (``/dev/stdout``,
    ``/dev/full``) or a FIFO is written in place. A folder (``folder=True``) is
    written as ``.NAME.PID.part/NAME``, not yet created, so that tools naming the files inside
    after their folder (rosbag2: ``NAME/NAME.db3``) name them right.

    Example::

        with AtomicOutput("out/tracks.npz") as tmp:
            np.savez_compressed(tmp, xy=xy)
    """

    def __init__(self, path: str | os.PathLike, folder: bool = False) -> None:
        self.path = Path(path).expanduser()
        self._in_place = not folder and _is_special(self.path)
        if self.path.is_symlink() and not self._in_place:
            self.path = self.path.resolve()
        self.folder = folder
        self._holder = temporary_name(self.path) if folder else None
        if self._in_place:
            self.tmp = self.path
            return
        self.tmp = self._holder / self.path.name if folder else temporary_name(self.path)
        _remove(self._holder or self.tmp)  # a leftover of a killed process with the same pid
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self._holder is not None:
                self._holder.mkdir()
        except OSError as err:
            raise self.error(err) from None

    def error(self, err: OSError) -> OutputError:
        """The one-line error for ``err`` while writing this output."""
        return OutputError(f"cannot write {self.path}: {os_error_text(err)}")

    def commit(self) -> Path:
        """Move the finished temporary file / folder to ``path``; returns ``path``."""
        if self._in_place:
            return self.path
        try:
            if self.folder and self.path.is_dir():
                old = temporary_name(self.path, "old")
                os.replace(self.path, old)
                os.replace(self.tmp, self.path)
                _remove(old)
            else:
                os.replace(self.tmp, self.path)
        except OSError as err:
            self.discard()
            raise self.error(err) from None
        self.discard()  # the empty holder folder
        return self.path

    def discard(self) -> None:
        """Remove the temporary file / folder (nothing of it stays behind)."""
        if not self._in_place:
            _remove(self._holder or self.tmp)

    def __enter__(self) -> Path:
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
            return
        self.discard()
        if isinstance(exc, OSError):
            raise self.error(exc) from None


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :class:`AtomicOutput`); returns the path."""
    out = AtomicOutput(path)
    with out as tmp:
        tmp.write_bytes(data)
    return out.path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, payload: Any, indent: int | None = 2) -> Path:
    """Write ``payload`` as JSON (and a final newline) to ``path`` atomically; returns the path."""
    return write_text(path, json.dumps(payload, indent=indent) + "\n")


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line to a log file (a log grows line by line, so it is not renamed). On an
    ``OSError`` the file is cut back to its previous length (no half line) and an
    :class:`OutputError` names the file."""
    path = Path(path)
    size = path.stat().st_size if path.is_file() else 0
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line.rstrip("\n") + "\n")
    except OSError as err:
        try:
            os.truncate(path, size)
        except OSError:
            pass
        raise OutputError(f"cannot write {path}: {os_error_text(err)}") from None
