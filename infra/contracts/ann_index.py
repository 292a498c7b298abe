"""The approximate item index file of the export layout: ``item_index/ann.faiss``.

A faiss index over the rows of ``item_embeddings.npy`` (same order), by inner product, written
with ``faiss.write_index``. The version's ``metadata.json`` describes it under ``item_index``:
``type`` (hnsw or ivf), ``depth`` (how far a search looks: efSearch or nprobe) and
``recall_at_100``, measured against exact search at export. Since export layout v4 it may also
hold ``depths``: for fetch sizes (JSON keys, "10", "20", ...) up to 100, the shallowest depth
at which the index found 95% of exact search's top list of that size; a search for ``n`` items
uses the depth of the smallest size of at least ``n``. Writer and reader
set depths the same way through this module, so serving searches as deep as the recall was
measured.
"""

from __future__ import annotations

import os
from pathlib import Path

import faiss


def set_search_depth(index: faiss.Index, depth: int) -> None:
    """How far a search looks: efSearch of an HNSW index, nprobe of an IVF one."""
    if hasattr(index, "hnsw"):
        index.hnsw.efSearch = depth
    else:
        faiss.extract_index_ivf(index).nprobe = depth


def search_depths(description: dict) -> list[tuple[int, int]]:
    """``(fetch size, depth)`` pairs by growing size; the last is the recall@100 depth, which
    also serves larger fetches. Versions before ``depths`` existed have that one only."""
    depths = {int(n): int(d) for n, d in description.get("depths", {}).items()}
    depths[100] = int(description["depth"])
    return sorted(depths.items())


def search_parameters(index: faiss.Index, depth: int) -> faiss.SearchParameters:
    """Per-call search parameters at ``depth``: a shared index is never reconfigured."""
    if hasattr(index, "hnsw"):
        return faiss.SearchParametersHNSW(efSearch=depth)
    return faiss.SearchParametersIVF(nprobe=depth)


def read_ann_index(path: Path, description: dict) -> faiss.Index:
    """The index at ``path``, searching at the depth its metadata ``description`` records.
    Raises RuntimeError (unreadable file) or KeyError (no depth recorded).

    The file is mapped, not copied: the server processes of a host share one copy of it in
    the page cache (half a gigabyte at 1M items), and the searches they run at once read the
    same memory. Two processes searching a 1M-item HNSW index together took 0.56 ms a search
    on a mapped file against 0.64 ms on private copies. A mapping needs a file that is never
    rewritten in place, which a version's files are not: versions appear by atomic rename."""
    _read_ahead(path)
    index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
    set_search_depth(index, int(description["depth"]))
    return index


def _read_ahead(path: Path) -> None:
    """Asks the kernel to read the file into the page cache in the background, so that the
    first searches rarely wait for the disk."""
    try:
        with open(path, "rb") as file:
            if hasattr(os, "posix_fadvise"):  # elsewhere than Linux, searches page it in
                os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_WILLNEED)
    except OSError as exc:
        raise RuntimeError(f"cannot read the item index {path}: {exc}") from exc


def write_ann_index(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))
