"""A directory named by a local path or a URL: the one filesystem layer of the file adapters.

The examples and the model registry live under a root that is a local path (the default) or an
object-store URL: ``s3://bucket/prefix``, ``gs://…``, ``abfs://…``. Both are reached through
fsspec, which s3fs, gcsfs and adlfs implement; pyarrow.fs was the other candidate, but it has
no create-only write, which the commits below need. Credentials and endpoints come from each
cloud's own environment (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``…), as boto3 reads it.

The invariant: :meth:`StorageRoot.publish` makes a whole object appear at once, or not at all,
and with ``create_only`` fails if the name was taken, on every backend:

- on a local filesystem, by writing a hidden temporary file, fsyncing it and renaming it into
  place (create-only: hard-linking it, which fails if the name exists), then fsyncing the
  directory;
- on an object store, by one PUT, which stores see whole or not at all (S3, GCS and Azure
  Blob all give strong read-after-write consistency); create-only is a conditional PUT
  (``If-None-Match: *``), which fsspec's exclusive mode ``"xb"`` sends.

Object stores have no rename, so writers that publish several objects write them under names
no reader looks for, then publish the one object that names them last.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import fsspec
from fsspec.implementations.local import LocalFileSystem

from streamrec.infra.core.errors import StoreUnavailable, StreamrecError


def is_url(location: str) -> bool:
    """Whether a path setting names an object store (``s3://…``) rather than a local path."""
    return "://" in location and not location.startswith("file://")


class StorageRoot:
    """A directory under which adapters read and publish objects by relative name."""

    def __init__(self, location: str | Path) -> None:
        self.location = str(location)
        try:
            self.fs, self._base = fsspec.core.url_to_fs(self.location)
        except (ImportError, ValueError) as exc:  # an unknown scheme, or its package missing
            raise StreamrecError(f"cannot open storage {self.location}: {exc}") from exc
        self.is_local = isinstance(self.fs, LocalFileSystem)

    def full(self, relative: str) -> str:
        """The full path (local) or URL (object store) of ``relative``."""
        if self.is_local:
            return f"{self._base}/{relative}" if relative else self._base
        return self.fs.unstrip_protocol(self._path(relative))

    def relative(self, full: str) -> str:
        """The inverse of :meth:`full`."""
        path = self.fs._strip_protocol(full)
        return path[len(self._base) :].lstrip("/")

    def read_bytes(self, relative: str) -> bytes | None:
        """The object's bytes, or None if there is none of that name."""
        try:
            return self.fs.cat_file(self._path(relative))
        except FileNotFoundError:
            return None
        except Exception as exc:
            _raise_unless_store_failure(exc)
            raise StoreUnavailable(f"cannot read {self.full(relative)}: {exc}") from exc

    def read_all(self, relatives: list[str]) -> list[bytes]:
        """Several objects' bytes, in order (fetched concurrently from an object store)."""
        if not relatives:
            return []
        paths = [self._path(r) for r in relatives]
        try:
            found = self.fs.cat(paths, on_error="raise")
        except Exception as exc:
            _raise_unless_store_failure(exc)
            raise StoreUnavailable(f"cannot read under {self.location}: {exc}") from exc
        by_path = {self.fs._strip_protocol(k): v for k, v in found.items()}
        return [by_path[self.fs._strip_protocol(p)] for p in paths]

    def names(self, relative: str = "") -> list[str]:
        """The names directly under ``relative`` (files and directories), sorted."""
        try:
            listed = self.fs.ls(self._path(relative), detail=False, refresh=True)
        except FileNotFoundError:
            return []
        except Exception as exc:
            _raise_unless_store_failure(exc)
            raise StoreUnavailable(f"cannot list {self.full(relative)}: {exc}") from exc
        return sorted(str(path).rstrip("/").rsplit("/", 1)[-1] for path in listed)

    def glob(self, pattern: str) -> list[str]:
        """Relative names of the objects matching ``pattern`` (``*`` within one level)."""
        try:
            self.fs.invalidate_cache()
            found = self.fs.glob(self._path(pattern))
        except Exception as exc:
            _raise_unless_store_failure(exc)
            raise StoreUnavailable(f"cannot list {self.full(pattern)}: {exc}") from exc
        return sorted(self.relative(str(path)) for path in found)

    def find(self, relative: str) -> list[str]:
        """Relative names of every object (file) under ``relative``, at any depth."""
        try:
            found = self.fs.find(self._path(relative))
        except FileNotFoundError:
            return []
        except Exception as exc:
            _raise_unless_store_failure(exc)
            raise StoreUnavailable(f"cannot list {self.full(relative)}: {exc}") from exc
        return sorted(self.relative(str(path)) for path in found)

    def publish(self, relative: str, data: bytes, create_only: bool = False) -> bool:
        """Makes ``data`` the whole object ``relative`` in one atomic step (module docstring).

        With ``create_only``, returns False instead if the name already exists."""
        try:
            if self.is_local:
                return _publish_local(Path(self._path(relative)), data, create_only)
            if not create_only:
                self.fs.pipe_file(self._path(relative), data)
                return True
            with self.fs.open(self._path(relative), "xb") as handle:
                handle.write(data)
            return True
        except FileExistsError:
            return False
        except Exception as exc:
            _raise_unless_store_failure(exc)
            raise StoreUnavailable(f"cannot write {self.full(relative)}: {exc}") from exc

    def open_output(self, relative: str) -> BinaryIO:
        """A new object's writer; it is durable, and readable whole, once ``close`` returns."""
        path = self._path(relative)
        try:
            if self.is_local:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                return _SyncedFile(path)
            return self.fs.open(path, "wb")
        except Exception as exc:
            _raise_unless_store_failure(exc)
            raise StoreUnavailable(f"cannot write {self.full(relative)}: {exc}") from exc

    def upload(self, local: Path, relative: str) -> None:
        """Copies a local file to the object ``relative`` (a new name: no reader looks yet)."""
        try:
            self.fs.put_file(str(local), self._path(relative))
        except Exception as exc:
            _raise_unless_store_failure(exc)
            raise StoreUnavailable(f"cannot upload to {self.full(relative)}: {exc}") from exc

    def download(self, relatives: Iterable[str], local_dir: Path) -> None:
        """Copies objects to ``local_dir`` under the same relative names."""
        relatives = list(relatives)
        for relative in relatives:
            (local_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.fs.get([self._path(r) for r in relatives], [str(local_dir / r) for r in relatives])
        except Exception as exc:
            _raise_unless_store_failure(exc)
            raise StoreUnavailable(f"cannot download from {self.location}: {exc}") from exc

    def remove(self, relatives: Iterable[str]) -> None:
        """Deletes the objects ``relatives``; names already gone are no error."""
        relatives = list(relatives)
        if relatives:
            self._remove([self._path(r) for r in relatives], self.location)

    def remove_tree(self, relative: str) -> None:
        """Deletes everything under ``relative``, if anything is there."""
        self._remove(self._path(relative), self.full(relative), recursive=True)

    def _remove(self, paths: str | list[str], named: str, recursive: bool = False) -> None:
        try:
            self.fs.rm(paths, recursive=recursive)
        except FileNotFoundError:
            pass
        except Exception as exc:
            _raise_unless_store_failure(exc)
            raise StoreUnavailable(f"cannot delete under {named}: {exc}") from exc

    def _path(self, relative: str) -> str:
        return f"{self._base}/{relative}" if relative else self._base


# The packages whose exceptions mean "the store did not answer or refused": each backend's
# client raises its own (botocore's EndpointConnectionError is no OSError), besides OSError.
_STORE_CLIENTS = {"botocore", "aiobotocore", "s3fs", "aiohttp", "gcsfs", "google", "adlfs", "azure"}


def _raise_unless_store_failure(exc: Exception) -> None:
    """Re-raises ``exc`` unless it is a store's failure, which the caller turns into
    :class:`StoreUnavailable`; a missing or existing name and a bug keep their own type."""
    if isinstance(exc, FileNotFoundError | FileExistsError | StreamrecError):
        raise exc
    if not isinstance(exc, OSError) and type(exc).__module__.split(".")[0] not in _STORE_CLIENTS:
        raise exc


class _SyncedFile:
    """A local file whose ``close`` fsyncs it first, so it is durable once closed."""

    def __init__(self, path: str) -> None:
        self._handle = open(path, "wb")  # noqa: SIM115 - closed by close()

    def write(self, data: bytes) -> int:
        return self._handle.write(data)

    def close(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()

    def __enter__(self) -> _SyncedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _publish_local(path: Path, data: bytes, create_only: bool) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.partial"
    with _SyncedFile(str(partial)) as handle:
        handle.write(data)
    try:
        if create_only:
            os.link(partial, path)  # fails if the name exists
        else:
            os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return True


def fsync_dir(directory: Path) -> None:
    """Makes a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
