"""voxaug's exceptions. Every error voxaug raises is a :class:`VoxaugError`; I/O failures are also
:class:`OSError` (a missing file also :class:`FileNotFoundError`), bad input and bad pipelines also
:class:`ValueError`, GPU failures also :class:`RuntimeError`, a buffer that could not be allocated
also :class:`MemoryError`. The message is voxaug's."""


class VoxaugError(Exception):
    """Base class of every error raised by voxaug."""


class VoxaugOSError(VoxaugError, OSError):
    """Reading or writing a file failed."""


class VoxaugFileNotFoundError(VoxaugOSError, FileNotFoundError):
    """A file or folder does not exist."""


class VoxaugValueError(VoxaugError, ValueError):
    """Bad input: a malformed file, an invalid pipeline, arguments that cannot be processed."""


class VoxaugRuntimeError(VoxaugError, RuntimeError):
    """The GPU failed (no adapter, out of memory, lost device)."""


class VoxaugMemoryError(VoxaugError, MemoryError):
    """A buffer could not be allocated (the memory there is, or the process's limit, is not enough)."""
