"""Model export layout v6: the written contract between training and serving.

Each trained model is one numbered version directory, in TF Serving layout::

    MODEL_DIR/<version>/saved_model.pb, variables/   the query tower (SavedModel)
    MODEL_DIR/<version>/item_index/item_ids.txt       one candidate item id per line
    MODEL_DIR/<version>/item_index/item_embeddings.npy  float32 [items, dim], same order
    MODEL_DIR/<version>/item_index/ann.faiss          optional: a faiss index of those rows
                                                      (inner product), for large catalogs
    MODEL_DIR/<version>/item_index/item_neighbours.npz  optional: each item's neighbour list
                                                      (v6, below)
    MODEL_DIR/<version>/query_tower.tflite            optional: the query tower compiled for
                                                      one request at a time (v4, below)
    MODEL_DIR/<version>/weights/query_tower.*         the towers' weights (TF checkpoint), for
                                                      warm starts; serving never reads them
    MODEL_DIR/<version>/logs/                         TensorBoard logs of the fit and evaluation
    MODEL_DIR/<version>/metadata.json                 versions, data range, parameters, metrics
    MODEL_DIR/<version>/checksums.json                SHA-256 of every file above

The SavedModel's ``serving_default`` signature takes

- ``user_id`` (string ``[batch]``);
- ``history`` (string ``[batch, history_length]``, most recent first, padded with ``""``);
- ``history_times`` (int64 ``[batch, history_length]``, each history event's time in ms, in the
  same order; ``-1`` where unknown or padding), new in v2;
- ``history_event_types`` (string ``[batch, history_length]``, each history event's type,
  ``""`` where unknown or padding), new in v2;
- ``request_time`` (int64 ``[batch]``, ms: when the recommendation is asked for), new in v2;
- ``request_context`` (string ``[batch, n]``, the request's context as ``key=value`` tokens,
  sorted as :func:`.feature_spec.context_tokens` makes them, padded with ``""``; any ``n``,
  ``n`` may be 0), new in v3;

and returns ``query_embedding`` (float32 ``[batch, dim]``); a candidate's score is the dot
product of the query embedding with its row of ``item_embeddings.npy``. Unknown ids are valid
input. v1 signatures take the first two inputs only, v2 the first five; readers feed a version
the inputs its signature declares.

``metadata.json`` carries ``export_format_version`` (this layout), ``feature_spec_version`` (the
history the query tower expects, see :mod:`.feature_spec`) and ``history_length``; readers refuse
a version they do not know rather than serve a model they would misread. Its ``item_index``
entry describes ``ann.faiss`` when present: ``type`` (hnsw or ivf), the search ``depth``
(efSearch or nprobe) and the ``recall_at_100`` against exact search measured at export; without
the file, serving scans every item exactly. The file is optional (since v2): a reader that does
not know it still serves the version exactly.

``query_tower.tflite`` (new in v4, optional) is the same query tower compiled by TensorFlow Lite
for a batch of one, after its string lookups: it takes the int64 inputs of
:mod:`.query_inputs` and returns ``query_embedding`` ``[1, dim]``. ``metadata.json`` describes it
under ``compiled_query``: ``query_items``, how many leading lines of ``item_ids.txt`` are the
tower's item vocabulary, and ``max_abs_diff`` against the signature on sampled inputs at export,
or, without the file, the ``reason``. Readers that do not know it call the signature.

``metadata.json``'s ``popularity_prior`` (new in v5) is the boost serving adds to each item's
dot product, ``weight * ln(1 + count)`` of the item's count in a popularity window
(:mod:`.popularity_prior`): ``window``, ``depth`` and ``weight``, where weight 0 (or no entry)
is none. A reader that does not know it would serve other scores than the ones evaluated, so v5
is not readable by v4 readers.

``item_neighbours.npz`` (new in v6, optional) holds each item row's list of neighbour rows with
positive weights, and ``metadata.json``'s ``item_neighbours`` entry the ``history``,
``per_item`` and ``weight`` with which serving adds them to the scores
(:mod:`.item_neighbours`); weight 0 (or no entry) is none, and the file may then be absent. Like
the prior, a reader that does not know it would serve other scores than the ones evaluated, so
v6 is not readable by v5 readers.

``checksums.json`` is written last inside the version; a registry verifies a version against
it before the version may serve, so a damaged copy is refused rather than served.

Versions are positive integers; the highest is the newest. A version is complete once its
``checksums.json`` exists: on a local filesystem the whole directory appears by an atomic
rename; on an object store, which cannot rename, ``checksums.json`` is written last and
create-only (see ``streamrec.infra.storage.adapters.file_model_registry``), so a reader never
sees a partial export. An object store's version may also hold ``.claim``, the publisher's
claim on its number, which readers ignore. This module has no TensorFlow dependency, so
serving and tooling can read the layout cheaply.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from streamrec.infra.contracts.feature_spec import (
    FEATURE_SPEC_VERSION,
    READABLE_FEATURE_SPEC_VERSIONS,
)
from streamrec.infra.core.errors import StreamrecError, UnknownContractVersion

EXPORT_FORMAT_VERSION = 6
# 2 and 3 only added signature inputs, 4 an optional file, 5 an optional metadata entry, 6 both
READABLE_EXPORT_FORMAT_VERSIONS = (1, 2, 3, 4, 5, 6)
SIGNATURE_NAME = "serving_default"
USER_ID_INPUT = "user_id"
HISTORY_INPUT = "history"
HISTORY_TIMES_INPUT = "history_times"
HISTORY_EVENT_TYPES_INPUT = "history_event_types"
REQUEST_TIME_INPUT = "request_time"
REQUEST_CONTEXT_INPUT = "request_context"
UNKNOWN_TIME = -1
QUERY_OUTPUT = "query_embedding"
HISTORY_PADDING = ""
CHECKSUMS_FILE = "checksums.json"


@dataclass(frozen=True)
class ModelVersion:
    root: Path

    @property
    def version(self) -> int:
        return int(self.root.name)

    @property
    def saved_model_dir(self) -> Path:
        return self.root

    @property
    def item_ids_file(self) -> Path:
        return self.root / "item_index" / "item_ids.txt"

    @property
    def item_embeddings_file(self) -> Path:
        return self.root / "item_index" / "item_embeddings.npy"

    @property
    def ann_index_file(self) -> Path:
        return self.root / "item_index" / "ann.faiss"

    @property
    def item_neighbours_file(self) -> Path:
        return self.root / "item_index" / "item_neighbours.npz"

    @property
    def compiled_query_file(self) -> Path:
        return self.root / "query_tower.tflite"

    @property
    def weights_prefix(self) -> Path:
        return self.root / "weights" / "query_tower"

    @property
    def weights_index_file(self) -> Path:
        return self.root / "weights" / "query_tower.index"

    @property
    def metadata_file(self) -> Path:
        return self.root / "metadata.json"

    def metadata(self) -> dict:
        """The version's metadata, after checking that this code can read the export."""
        try:
            metadata = json.loads(self.metadata_file.read_text())
        except (OSError, ValueError) as exc:
            raise StreamrecError(f"cannot read {self.metadata_file}: {exc}") from exc
        fix = "serve it with the streamrec that trained it, or retrain"
        found = metadata.get("export_format_version")
        if found not in READABLE_EXPORT_FORMAT_VERSIONS:
            what = f"export format version of {self.root}"
            raise UnknownContractVersion(what, found, EXPORT_FORMAT_VERSION, fix)
        # Exports written before the field existed were built under feature spec 1.
        found = metadata.get("feature_spec_version", 1)
        if found not in READABLE_FEATURE_SPEC_VERSIONS:
            what = f"feature spec version of {self.root}"
            raise UnknownContractVersion(what, found, FEATURE_SPEC_VERSION, fix)
        return metadata


def versions(model_dir: str | Path) -> list[ModelVersion]:
    """Every complete version under ``model_dir``, oldest first."""
    root = Path(model_dir)
    if not root.is_dir():
        return []
    found = [
        ModelVersion(path)
        for path in root.iterdir()
        if path.is_dir() and path.name.isdigit() and int(path.name) > 0
    ]
    return sorted(found, key=lambda v: v.version)


def latest_version(model_dir: str | Path) -> ModelVersion | None:
    found = versions(model_dir)
    return found[-1] if found else None


def write_checksums(root: Path) -> None:
    """Records the SHA-256 of every file under ``root`` (an export about to be published)."""
    sums = {
        str(path.relative_to(root)): _sha256(path)
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != CHECKSUMS_FILE
    }
    (root / CHECKSUMS_FILE).write_text(json.dumps(sums, indent=1))


def verify_files(version: ModelVersion) -> None:
    """Raises, naming the first problem, unless every file matches the export's checksums."""
    version.metadata()  # the contract versions first: an unknown format is not "corrupt"
    try:
        sums = json.loads((version.root / CHECKSUMS_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise StreamrecError(
            f"model version {version.root} has no readable {CHECKSUMS_FILE} ({exc}); retrain it"
        ) from exc
    for name, expected in sums.items():
        path = version.root / name
        if not path.is_file():
            raise StreamrecError(f"model version {version.root} is incomplete: {name} is missing")
        if _sha256(path) != expected:
            raise StreamrecError(f"model version {version.root} is corrupt: {name} was changed")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
