"""Writing files atomically: every file yolokit writes (checkpoints, Darknet weights, HOG models, results.csv,
metrics and detections JSON, split lists, MOT results) goes through :func:`write_atomic`, so a crash, a kill or a
full disk mid-write leaves the previous file whole, never a truncated one. A leaf module: any floor may use it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: str | Path, write) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path`` (binary mode), fsync it, then ``os.replace`` it
    onto ``path``. On an exception the temporary file is removed and ``path`` is
    untouched; a failed write (disk full, quota, read-only) is a :class:`yolokit.errors.WriteError`, an
    ``OSError`` that the CLI prints as one line. Killed writes leave ``NAME.<random>.tmp`` files, which the
    trainer cleans at its next start."""
    from yolokit.errors import WriteError

    path = Path(path)
    tmp = None
    f = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a written file gets the mode open() would give it
        with os.fdopen(fd, "wb") as raw:
            f = _Recorder(raw)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        # torch.save's C++ writer turns the disk-full OSError or the Ctrl-C raised inside f.write into a
        # RuntimeError; the callers map the original (SaveError, "interrupted"), so that is what is raised
        cause = f.error if f is not None and f.error is not None and f.error is not exc else exc
        if isinstance(cause, OSError) and not isinstance(cause, WriteError):
            raise WriteError(cause.errno, cause.strerror, str(path)) from None  # still an OSError; one CLI line
        if cause is not exc:
            raise cause from None
        raise
    return path


class _Recorder:
    """A file that remembers the exception its ``write`` raised (see :func:`write_atomic`)."""

    def __init__(self, f):
        self._f, self.error = f, None

    def write(self, data):
        try:
            return self._f.write(data)
        except BaseException as exc:
            self.error = exc
            raise

    def __getattr__(self, name):
        return getattr(self._f, name)


def _umask() -> int:
    """The process umask, read without changing it (os.umask sets it: another thread creating a file meanwhile
    would get the wrong mode); Linux states it in /proc/self/status, elsewhere it is read by setting it back."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> Path:
    """:func:`write_atomic` for UTF-8 text."""
    data = text.encode("utf-8")
    return write_atomic(path, lambda f: f.write(data))


# ----------------------------------------------------------------------------------------------- reading
#: What a reader of text (YAML, JSON, cfg, names, label files) takes at most; far above any real file.
MAX_TEXT_BYTES = 256 << 20
#: Nodes a YAML document may expand to through its aliases (a "billion laughs" document is refused).
MAX_YAML_NODES = 1_000_000


def _file_kind(mode: int) -> str:
    import stat

    return ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else
            "a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "not a regular file")


def check_regular(path: str | Path, what: str = "file", limit: int | None = MAX_TEXT_BYTES, error=None) -> int:
    """Raise ``error`` (default :class:`yolokit.errors.DataError`) unless ``path`` is a regular file (a link to
    one is fine) of at most ``limit`` bytes; returns its size. ``/dev/zero``, a FIFO (whose ``open`` would block)
    or a folder is refused before anything is opened."""
    import stat

    from yolokit.errors import DataError

    error = error or DataError
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: cannot read the {what}: {_file_kind(st.st_mode)}, not a regular file")
    if limit is not None and st.st_size > limit:
        raise error(f"{path}: {st.st_size} bytes, more than a {what} can be ({limit} bytes); refused")
    return st.st_size


def read_bytes(path: str | Path, what: str = "file", limit: int | None = MAX_TEXT_BYTES, error=None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (:func:`check_regular`); never reads past it even
    if the file grows meanwhile."""
    from yolokit.errors import DataError

    error = error or DataError
    check_regular(path, what, limit, error)
    try:
        with open(path, "rb") as f:
            data = f.read() if limit is None else f.read(limit + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    if limit is not None and len(data) > limit:
        raise error(f"{path}: more than {limit} bytes; refused as a {what}")
    return data


def read_text(path: str | Path, what: str = "file", limit: int | None = MAX_TEXT_BYTES, error=None) -> str:
    """:func:`read_bytes` decoded as UTF-8 (one error line naming the byte offset if it is not text)."""
    from yolokit.errors import DataError

    error = error or DataError
    data = read_bytes(path, what, limit, error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: cannot read the {what}: not UTF-8 text (byte {exc.start})") from None


def read_names_file(path: str | Path) -> list[str]:
    """Class names from a ``.names``/``.txt`` file: one per line, blank lines ignored (Darknet's format); the
    one reader behind a dataset YAML's ``names:`` file and ``yolokit.load``'s ``.names``. A file that cannot be
    read or decoded raises ``OSError``/``UnicodeDecodeError``; callers name it."""
    from yolokit.errors import ConfigError

    check_regular(path, "names file", 64 << 20, ConfigError)  # /dev/zero or a FIFO: one line, not a hang
    return [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()]


def load_json(text: str | bytes, source: str, error=None):
    """``json.loads`` whose every failure is one ``error`` line naming ``source``: bad syntax (line, column),
    nesting too deep for Python (a 200,000-deep document), a number too long to convert (a 5,000-digit id)."""
    import json

    from yolokit.errors import DataError

    error = error or DataError
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{source}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}") from None
    except RecursionError:
        raise error(f"{source}: JSON nested too deeply to read") from None
    except ValueError as exc:  # int() over sys.get_int_max_str_digits, bad surrogates
        why = "a number with too many digits" if "digits" in str(exc) else " ".join(str(exc).split())[:120]
        raise error(f"{source}: not usable JSON ({why})") from None


def load_yaml(text: str, source: str, error=None, max_nodes: int = MAX_YAML_NODES):
    """``yaml.safe_load`` of one document whose alias expansion is bounded: a document whose nodes, counted as
    if every alias were copied, exceed ``max_nodes`` is refused before anything is built (the "billion laughs"
    of YAML). Syntax errors name the line; nesting too deep for Python is one line too."""
    import yaml

    from yolokit.errors import ConfigError

    error = error or ConfigError
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        sizes: dict[int, int] = {}

        def expanded(n) -> int:  # memoised per node: shared (aliased) nodes are counted once per use, cheaply
            key = id(n)
            if key not in sizes:
                if isinstance(n, yaml.SequenceNode):
                    sizes[key] = 1 + sum(expanded(c) for c in n.value)
                elif isinstance(n, yaml.MappingNode):
                    sizes[key] = 1 + sum(expanded(k) + expanded(v) for k, v in n.value)
                else:
                    sizes[key] = 1
                sizes[key] = min(sizes[key], max_nodes + 1)
            return sizes[key]

        if expanded(node) > max_nodes:
            raise error(f"{source}: YAML aliases expand to more than {max_nodes} nodes; refused")
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise error(f"{source}{where}: malformed YAML: {getattr(exc, 'problem', None) or exc}") from None
    except RecursionError:
        raise error(f"{source}: YAML nested too deeply to read") from None
    finally:
        loader.dispose()


def read_yaml(path: str | Path, what: str = "YAML file", error=None, limit: int = 16 << 20):
    """:func:`read_text` (a regular file of at most ``limit`` bytes) then :func:`load_yaml`."""
    from yolokit.errors import ConfigError

    error = error or ConfigError
    return load_yaml(read_text(path, what, limit, error), str(path), error)
