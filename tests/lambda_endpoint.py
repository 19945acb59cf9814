"""A loopback AWS Lambda Invoke endpoint that runs the real handler: ``python lambda_endpoint.py [PORT]``.

It answers the Lambda API's ``POST /2015-03-31/functions/{name}/invocations`` the way Lambda does for a
synchronous invocation: the event (the request body) goes to ``heicconv.aws_lambda.handler`` in this
process, and its return value is the answer's JSON payload; a handler that raises is answered with
``X-Amz-Function-Error: Unhandled`` and ``{"errorMessage", "errorType"}``. Payloads over Lambda's 6 MB
are refused with ``RequestEntityTooLargeException`` as Lambda refuses them. With
``LAMBDA_ENDPOINT_THROTTLE_FILE`` set, while the number in that file is above 0, each ``POST /convert``
takes one off it and is refused with ``TooManyRequestsException`` (429), as a throttled function is.
The function's own settings (``HEICCONV_BACKEND``, ...) are this process's environment, as on a real
function. Used by the tests and by ``benchmarks/remote_round_trip.py`` through boto3's ``endpoint_url``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from heicconv.aws_lambda import handler

LIMIT = 6 * 1024 * 1024
THROTTLE_FILE = os.environ.get("LAMBDA_ENDPOINT_THROTTLE_FILE", "")
_throttle_lock = threading.Lock()


def _throttled(event: object) -> bool:
    if not THROTTLE_FILE or not isinstance(event, dict) or event.get("rawPath") != "/convert":
        return False
    with _throttle_lock:
        path = Path(THROTTLE_FILE)
        left = int(path.read_text() or "0") if path.exists() else 0
        if left > 0:
            path.write_text(str(left - 1))
        return left > 0


ROUTE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")


class Invoke(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        path = self.path.partition("?")[0]
        match = ROUTE.match(path)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if match is None:
            return self._send(404, {"Type": "User", "message": f"no route {path}"}, error="ResourceNotFoundException")
        if len(body) > LIMIT:
            message = f"{len(body)} byte payload is too large for the RequestResponse invocation type ({LIMIT} byte)"
            return self._send(413, {"Type": "User", "message": message}, error="RequestEntityTooLargeException")
        event = json.loads(body)
        if _throttled(event):
            payload = {
                "Type": "User",
                "message": "Rate Exceeded.",
                "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
            }
            return self._send(429, payload, error="TooManyRequestsException")
        try:
            answer = handler(event, None)
        except Exception as exc:  # Lambda answers 200 with the error as the payload
            payload = {"errorMessage": str(exc), "errorType": type(exc).__name__}
            return self._send(200, payload, function_error="Unhandled")
        return self._send(200, answer)

    def _send(self, status: int, payload: object, *, error: str = "", function_error: str = "") -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Amz-Executed-Version", "$LATEST")
        if error:
            self.send_header("X-Amzn-ErrorType", error)
        if function_error:
            self.send_header("X-Amz-Function-Error", function_error)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def start(function_env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """This endpoint in its own process (the function's environment is not the caller's): the process and its URL.

    ``function_env`` is the function's configuration (``HEICCONV_BACKEND``, ...); ``PYTHONPATH`` in it is
    put before the caller's path.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEICCONV_")}
    path = [function_env.get("PYTHONPATH", ""), *sys.path]
    env.update({**function_env, "PYTHONPATH": os.pathsep.join(p for p in path if p)})
    proc = subprocess.Popen([sys.executable, str(Path(__file__))], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("ready "):
        proc.kill()
        raise RuntimeError(f"the Invoke endpoint did not start: {line!r}")
    return proc, f"http://127.0.0.1:{line.split()[1]}"


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(timeout=15)


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Invoke)
    print(f"ready {server.server_address[1]}", flush=True)  # the port, when 0 asked for a free one
    server.serve_forever()


if __name__ == "__main__":
    main()
