"""The approximate item index file of the export layout: ``item_index/ann.faiss``.

A faiss index over the rows of ``item_embeddings.npy`` (same order), by inner product, written
with ``faiss.write_index``. The version's ``metadata.json`` describes it under ``item_index``:
``type`` (hnsw or ivf), ``depth`` (how far a search looks: efSearch or nprobe) and
``recall_at_100``, measured against exact search at export. Writer and reader set the depth the
same way through this module, so serving searches as deep as the recall was measured.
"""

from __future__ import annotations

from pathlib import Path

import faiss


def set_search_depth(index: faiss.Index, depth: int) -> None:
    """How far a search looks: efSearch of an HNSW index, nprobe of an IVF one."""
    if hasattr(index, "hnsw"):
        index.hnsw.efSearch = depth
    else:
        faiss.extract_index_ivf(index).nprobe = depth


def read_ann_index(path: Path, description: dict) -> faiss.Index:
    """The index at ``path``, searching at the depth its metadata ``description`` records.
    Raises RuntimeError (unreadable file) or KeyError (no depth recorded)."""
    index = faiss.read_index(str(path))
    set_search_depth(index, int(description["depth"]))
    return index


def write_ann_index(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))
