"""``streamrec serve`` (the API-server role), and ``streamrec recommend`` and ``rank`` (its
client)."""

from __future__ import annotations

import argparse
import json

from streamrec.infra.cli.runtime import prepare_tensorflow
from streamrec.infra.core.config import Config


def add_commands(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="run the gRPC ranking service")
    serve.set_defaults(handler=_serve)

    recommend = commands.add_parser("recommend", help="ask the ranking service for a user's items")
    recommend.add_argument("user_id", metavar="USER_ID")
    recommend.add_argument("--k", type=int, default=10, help="how many items (default 10)")
    recommend.add_argument("--target", help="host:port of the service (default from config)")
    recommend.add_argument("--exclude", type=_ids, default=[], help="item ids to leave out (a,b)")
    recommend.add_argument(
        "--category", type=_ids, default=[], help="only items in these categories (a,b)"
    )
    recommend.add_argument("--context", type=_context, default={}, help=_CONTEXT_HELP)
    recommend.add_argument("--json", action="store_true", help="print the response as JSON")
    recommend.set_defaults(handler=_recommend)

    rank = commands.add_parser("rank", help="ask the ranking service to rank items for a user")
    rank.add_argument("user_id", metavar="USER_ID")
    rank.add_argument("item_ids", metavar="ITEM_ID", nargs="+")
    rank.add_argument("--target", help="host:port of the service (default from config)")
    rank.add_argument("--context", type=_context, default={}, help=_CONTEXT_HELP)
    rank.add_argument("--json", action="store_true", help="print the response as JSON")
    rank.set_defaults(handler=_rank)


def _serve(args: argparse.Namespace, config: Config) -> int:
    from streamrec.serving.server_processes import serve_processes, usable_cores

    processes = config.serving.processes or usable_cores()
    if processes > 1:
        serve_processes(config, processes, args.verbose, say=_say)
        return 0
    prepare_tensorflow(args.verbose)
    from streamrec.serving.server import serve_forever

    serve_forever(config, say=_say)
    return 0


def _recommend(args: argparse.Namespace, config: Config) -> int:
    from streamrec.serving.client import RecommendationClient

    with RecommendationClient.from_config(config, args.target) as client:
        response = client.recommend(
            args.user_id,
            args.k,
            exclude_item_ids=args.exclude,
            include_categories=args.category,
            context=args.context,
        )
    return _show(response, args.json, unknown=[])


def _rank(args: argparse.Namespace, config: Config) -> int:
    from streamrec.serving.client import RecommendationClient

    with RecommendationClient.from_config(config, args.target) as client:
        response = client.rank(args.user_id, args.item_ids, context=args.context)
    return _show(response, args.json, unknown=list(response.unknown_item_ids))


_CONTEXT_HELP = "the request's context, as the app would send it (device=ios,surface=deals)"


def _context(text: str) -> dict[str, str]:
    pairs = {}
    for part in text.split(","):
        key, equals, value = part.partition("=")
        if not equals or not key.strip():
            raise argparse.ArgumentTypeError(
                f"{text!r}: expected KEY=VALUE pairs separated by commas"
            )
        pairs[key.strip()] = value.strip()
    return pairs


def _ids(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _show(response: object, as_json: bool, unknown: list[str]) -> int:
    from streamrec.infra.contracts import recommend_pb2

    source = recommend_pb2.Source.Name(response.source).removeprefix("SOURCE_").lower()
    if response.fallback_reason:
        source += f": {response.fallback_reason}"
    items = [{"item_id": i.item_id, "score": round(i.score, 4)} for i in response.items]
    if as_json:
        record = {
            "model_version": response.model_version,
            "request_id": response.request_id,
            "source": source,
            "items": items,
        }
        print(json.dumps(record | ({"unknown_item_ids": unknown} if unknown else {})))
        return 0
    print(f"model version {response.model_version}, request {response.request_id} ({source})")
    for rank, item in enumerate(items, start=1):
        print(f"{rank:>3}. {item['item_id']}  {item['score']:.4f}")
    if unknown:
        print(f"unknown to the model: {', '.join(unknown)}")
    return 0


def _say(line: str) -> None:
    print(line, flush=True)
