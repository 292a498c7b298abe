"""``streamrec serve`` (the API-server role) and ``streamrec recommend`` (its client)."""

from __future__ import annotations

import argparse
import json

from streamrec.infra.cli.runtime import prepare_tensorflow
from streamrec.infra.config import Config


def add_commands(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="run the gRPC ranking service")
    serve.set_defaults(handler=_serve)

    recommend = commands.add_parser("recommend", help="ask the ranking service for a user's items")
    recommend.add_argument("user_id", metavar="USER_ID")
    recommend.add_argument("--k", type=int, default=10, help="how many items (default 10)")
    recommend.add_argument("--target", help="host:port of the service (default from config)")
    recommend.add_argument("--json", action="store_true", help="print the response as JSON")
    recommend.set_defaults(handler=_recommend)


def _serve(args: argparse.Namespace, config: Config) -> int:
    prepare_tensorflow(args.verbose)
    from streamrec.serving.server import serve_forever

    serve_forever(config)
    return 0


def _recommend(args: argparse.Namespace, config: Config) -> int:
    from streamrec.serving.client import RecommendationClient

    target = args.target or f"{config.serving.host}:{config.serving.port}"
    with RecommendationClient(target) as client:
        response = client.recommend(args.user_id, args.k)
    items = [{"item_id": i.item_id, "score": round(i.score, 4)} for i in response.items]
    if args.json:
        print(
            json.dumps(
                {
                    "model_version": response.model_version,
                    "request_id": response.request_id,
                    "from_cache": response.from_cache,
                    "items": items,
                }
            )
        )
        return 0
    print(
        f"model version {response.model_version}, request {response.request_id}"
        + (" (cached)" if response.from_cache else "")
    )
    for rank, item in enumerate(items, start=1):
        print(f"{rank:>3}. {item['item_id']}  {item['score']:.4f}")
    return 0
