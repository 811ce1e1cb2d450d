"""`python -m whetstone.serving`: serve one trained model until SIGTERM."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from types import FrameType

from whetstone.inference.generation import ChatModel
from whetstone.serving.auth import ServerKeys
from whetstone.serving.server import ModelServer


def build_server(argv: list[str] | None = None) -> ModelServer:
    """The server the command line asks for, its model loaded; not yet serving."""
    parser = argparse.ArgumentParser(prog="python -m whetstone.serving", description=__doc__)
    parser.add_argument("--model-dir", required=True, help="the job's output/model folder")
    parser.add_argument("--base", default=None, help="base model path, over the adapter's own")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--name", required=True, help="the model name clients send")
    parser.add_argument(
        "--base-name",
        default=None,
        help="answer this name too, as the base model (the adapter off); ignored for a full "
        "model, which has no base to answer as",
    )
    parser.add_argument(
        "--key-file", type=Path, required=True, help="a file holding the key requests must send"
    )
    parser.add_argument("--org", default=None, help="accept this organization's tokens too")
    parser.add_argument("--tokens-home", type=Path, default=None, help="whose tokens.json")
    args = parser.parse_args(argv)

    keys = ServerKeys.from_key_file(args.key_file, args.tokens_home, args.org)
    model = ChatModel.load(args.model_dir, args.base)
    base_name = args.base_name if model.serves_base else None
    return ModelServer((args.host, args.port), model, args.name, keys=keys, base_name=base_name)


def main(argv: list[str] | None = None) -> None:
    server = build_server(argv)

    def shut_down(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shut_down)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
