"""The checks every ranking request passes before any work: each bad field is named.

Limits keep one request from costing the server more than a few requests' worth: ``k`` up
to ``serving.max_k``, ``serving.max_excluded_items`` exclusions, ``serving.max_rank_candidates``
candidates, and a bounded context.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from google.protobuf.message import DecodeError, Message

from streamrec.infra.contracts import recommend_pb2
from streamrec.infra.contracts.events import (
    MAX_CONTEXT_ENTRIES,
    MAX_CONTEXT_LENGTH,
    MAX_ID_LENGTH,
)
from streamrec.infra.core.config import ServingConfig
from streamrec.serving.recommender import RecommendCall

MAX_CATEGORIES = 64
MAX_REQUEST_ID_LENGTH = 128


class BadRequest(ValueError):
    """A request field breaks the API contract; the message names it (INVALID_ARGUMENT)."""


@dataclass(frozen=True)
class Undecodable:
    """Stands for a request whose bytes are not its message (invalid UTF-8 in a string, a
    truncated field...), so it is refused with INVALID_ARGUMENT rather than gRPC's INTERNAL."""

    message: str
    problem: str
    user_id: str = ""
    request_id: str = ""


def lenient_parser(message: type[Message]) -> Callable[[bytes], Message | Undecodable]:
    """A request deserializer that returns :class:`Undecodable` instead of raising."""

    def parse(data: bytes) -> Message | Undecodable:
        try:
            return message.FromString(data)
        except DecodeError as exc:
            return Undecodable(message.DESCRIPTOR.name, str(exc) or "malformed")

    return parse


def recommend_call(
    request: recommend_pb2.RecommendRequest | Undecodable, limits: ServingConfig
) -> RecommendCall:
    _decoded(request)
    _check_common(request.user_id, request.request_id, request.context)
    if not 1 <= request.k <= limits.max_k:
        raise BadRequest(f"k must be between 1 and {limits.max_k}, got {request.k}")
    _check_ids("exclude_item_ids", request.exclude_item_ids, limits.max_excluded_items)
    _check_ids("include_categories", request.include_categories, MAX_CATEGORIES)
    _check_ids("exclude_categories", request.exclude_categories, MAX_CATEGORIES)
    return RecommendCall(
        user_id=request.user_id,
        k=request.k,
        exclude_item_ids=tuple(request.exclude_item_ids),
        include_categories=tuple(request.include_categories),
        exclude_categories=tuple(request.exclude_categories),
        context=tuple(sorted(request.context.items())),
    )


def rank_candidates(
    request: recommend_pb2.RankRequest | Undecodable, limits: ServingConfig
) -> list[str]:
    _decoded(request)
    _check_common(request.user_id, request.request_id, request.context)
    if not request.candidate_item_ids:
        raise BadRequest("candidate_item_ids must name at least one item")
    _check_ids("candidate_item_ids", request.candidate_item_ids, limits.max_rank_candidates)
    return list(request.candidate_item_ids)


def valid_request_id(request_id: str) -> bool:
    """Empty, or fit to travel back in the response's metadata and into logs."""
    return (
        len(request_id) <= MAX_REQUEST_ID_LENGTH
        and request_id.isascii()
        and request_id.isprintable()
    )


def _decoded(request: object) -> None:
    if isinstance(request, Undecodable):
        raise BadRequest(f"the request is not a valid {request.message}: {request.problem}")


def _check_common(user_id: str, request_id: str, context: Mapping[str, str]) -> None:
    if not user_id.strip():
        raise BadRequest("user_id must be a non-empty string")
    if len(user_id) > MAX_ID_LENGTH:
        raise BadRequest(f"user_id is longer than {MAX_ID_LENGTH} characters")
    if not valid_request_id(request_id):
        raise BadRequest(
            f"request_id must be printable ASCII of at most {MAX_REQUEST_ID_LENGTH} characters"
        )
    if len(context) > MAX_CONTEXT_ENTRIES:
        raise BadRequest(f"context has {len(context)} entries; at most {MAX_CONTEXT_ENTRIES}")
    for key, value in context.items():
        if not key or len(key) > MAX_CONTEXT_LENGTH or len(value) > MAX_CONTEXT_LENGTH:
            raise BadRequest(
                f"context[{key[:40]!r}]: keys must be non-empty, keys and values at most "
                f"{MAX_CONTEXT_LENGTH} characters"
            )


def _check_ids(field: str, values: Iterable[str], limit: int) -> None:
    values = list(values)
    if len(values) > limit:
        raise BadRequest(f"{field} has {len(values)} entries; at most {limit}")
    for value in values:
        if not value.strip() or len(value) > MAX_ID_LENGTH:
            raise BadRequest(
                f"{field}: {value[:40]!r} must be non-empty and at most {MAX_ID_LENGTH} characters"
            )
