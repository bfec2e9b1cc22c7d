"""Serve a web export on 127.0.0.1 with the headers its page needs (stdlib only).

``Cross-Origin-Opener-Policy: same-origin`` and ``Cross-Origin-Embedder-Policy:
require-corp`` make the page cross-origin isolated, which is what gives onnxruntime-web
SharedArrayBuffer and so WASM threads; a static host without them runs on one thread.
``.mjs`` and ``.wasm`` go out with JavaScript and WebAssembly media types (Python's table
lacks ``.mjs`` on some systems, and module scripts are refused under any other type).
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from overnet.errors import InputError

#: headers every response of the site carries
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


class SiteHandler(SimpleHTTPRequestHandler):
    """Static files of one folder with ``ISOLATION_HEADERS``; quiet unless asked."""

    extensions_map = {  # noqa: RUF012 (the base class's own attribute)
        **SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript",
        ".js": "text/javascript",
        ".wasm": "application/wasm",
        ".json": "application/json",
        ".onnx": "application/octet-stream",
    }
    verbose = False

    def end_headers(self) -> None:
        for name, value in ISOLATION_HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        if self.verbose:
            super().log_message(format, *args)


class SiteServer:
    """A threaded HTTP server of ``folder`` on ``host``:``port`` (0: a free port).

    ``start()`` serves from a background thread (tests, notebooks), ``serve_forever()``
    from the calling one (the CLI); ``close()`` stops either. A context manager."""

    def __init__(
        self, folder: str | Path, host: str = "127.0.0.1", port: int = 8000, verbose: bool = False
    ) -> None:
        folder = Path(folder)
        if not (folder / "index.html").is_file() or not (folder / "config.json").is_file():
            raise InputError(
                f"{folder} is not a web export (no index.html and config.json); make one with "
                "`overnet export --weights x2 --format web -o SITE`"
            )
        quiet_or_not = type("Handler", (SiteHandler,), {"verbose": verbose})
        handler = functools.partial(quiet_or_not, directory=str(folder))
        try:
            self.httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise InputError(
                f"cannot serve on {host}:{port} ({exc.strerror or exc}); give another --port"
            ) from None
        self.httpd.daemon_threads = True
        self.folder = folder
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> SiteServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> SiteServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m overnet.export.web.serve SITE [--port 8000]``."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m overnet.export.web.serve",
        description="Serve a web export on 127.0.0.1 with the cross-origin isolation headers.",
    )
    parser.add_argument("site", type=Path, help="the folder `overnet export --format web` wrote")
    parser.add_argument("--port", type=int, default=8000, help="0: any free port")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    try:
        server = SiteServer(args.site, port=args.port, verbose=args.verbose)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with server:
        print(f"serving {args.site} at {server.url} (Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
