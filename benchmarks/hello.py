"""The "hello" baseline: the least an ASGI application can do on our server setup.

Served through :func:`federation.server.serving.run`, exactly as the issuer is, so that the
issuer's numbers divided by these say what the issuer itself costs, not the server,
the loopback network or the load generator.

``python -m benchmarks.hello --port P --workers N`` serves it until a signal.
"""

from __future__ import annotations

import argparse

from fastapi import FastAPI

TARGET = "benchmarks.hello:create_app"


def create_app() -> FastAPI:
    """A bare application with one route, ``GET /hello``."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    return app


def main(argv: list[str] | None = None) -> None:
    from federation.server import serving

    parser = argparse.ArgumentParser(prog="python -m benchmarks.hello", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    serving.run(TARGET, host="127.0.0.1", port=args.port, workers=args.workers)


if __name__ == "__main__":
    main()
