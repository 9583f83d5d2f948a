"""The test cluster's kubelet endpoint: a relay in front of kwok's server that gives exec clients the
exit code of their command, as a real kubelet does.

kwok 0.8.0 loses the exit code of an exec'd command: it wraps os/exec's error, which cri-streaming's
ServeExec only recognises unwrapped, so a command exiting 3 reaches the client as an InternalError
status naming "exit status 3" (kubectl exits 1; kubernetes.core.k8s_exec, which reads the code from
the status' first cause, fails). KubeletRelay sits between the apiserver and kwok's server and turns
that status back into the NonZeroExitCode one a kubelet sends; everything else passes unchanged.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import socket
import socketserver
import ssl
import threading
from pathlib import Path

_LOST_EXIT_CODE = re.compile(r"error executing command in container: cmd wait: .*: exit status (\d+)(?:\n|$)")


def _restore_exit_code(payload: bytes) -> bytes:
    """The NonZeroExitCode status for kwok's InternalError status of a command that exited non-zero;
    any other payload as it is."""
    if not payload.startswith(b"{") or b"exit status" not in payload:
        return payload
    try:
        status = json.loads(payload)
    except ValueError:
        return payload
    match = _LOST_EXIT_CODE.search(status.get("message", "")) if status.get("reason") == "InternalError" else None
    if not match:
        return payload
    code = match.group(1)
    return json.dumps({"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                       "message": f"command terminated with non-zero exit code: exit status {code}",
                       "details": {"causes": [{"reason": "ExitCode", "message": code}]}}).encode()


def _read_exact(reader, size: int) -> bytes:
    data = reader.read(size)
    if len(data) != size:
        raise EOFError
    return data


def _relay_spdy(reader, send) -> None:
    """SPDY/3.1 frames (what the apiserver speaks to kubelets): a data frame's 24-bit length follows
    its payload; control frames (compressed headers) pass untouched."""
    while True:
        head = _read_exact(reader, 8)
        payload = _read_exact(reader, int.from_bytes(head[5:8], "big"))
        if not head[0] & 0x80:
            payload = _restore_exit_code(payload)
            head = head[:5] + len(payload).to_bytes(3, "big")
        send(head + payload)


def _relay_websocket(reader, send) -> None:
    """Server-to-client WebSocket frames of the channel protocols (v4 clients are proxied as they
    came): the error channel is 3, a leading byte in binary frames, a leading "3" and base64 in text
    ones."""
    while True:
        head = _read_exact(reader, 2)
        size = head[1] & 0x7F
        if size >= 126:
            size = int.from_bytes(_read_exact(reader, 2 if size == 126 else 8), "big")
        payload = _read_exact(reader, size)  # a server's frames are never masked
        opcode = head[0] & 0x0F
        if opcode == 2 and payload[:1] == b"\x03":
            payload = b"\x03" + _restore_exit_code(payload[1:])
        elif opcode == 1 and payload[:1] == b"3":
            restored = _restore_exit_code(base64.b64decode(payload[1:]))
            payload = b"3" + base64.b64encode(restored)
        size = len(payload)
        length = (bytes([size]) if size < 126 else bytes([126]) + size.to_bytes(2, "big") if size < 65536
                  else bytes([127]) + size.to_bytes(8, "big"))
        send(bytes([head[0]]) + length + payload)


class KubeletRelayHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: KubeletRelay = self.server  # type: ignore[assignment]
        with contextlib.suppress(OSError, ValueError, EOFError), \
                server.tls.wrap_socket(self.request, server_side=True) as client, \
                socket.create_connection(server.upstream) as upstream:
            def finish():
                for sock in (client, upstream):
                    with contextlib.suppress(OSError, ValueError):
                        sock.shutdown(socket.SHUT_RDWR)

            def pipe(reader, sock):
                with contextlib.suppress(OSError, ValueError):
                    while chunk := reader.read1(65536):
                        sock.sendall(chunk)
                finish()

            from_client, from_kwok = client.makefile("rb"), upstream.makefile("rb")
            request = _read_head(from_client)
            upstream.sendall(request)
            threading.Thread(target=pipe, args=(from_client, upstream), daemon=True).start()
            # only exec/attach/port-forward upgrade, each on a connection of its own
            if b"\nupgrade:" not in request.lower():
                return pipe(from_kwok, client)
            response = _read_head(from_kwok)
            client.sendall(response)
            switched = response.lower() if response.startswith(b"HTTP/1.1 101") else b""
            try:
                if b"\nupgrade: spdy/3.1" in switched:
                    _relay_spdy(from_kwok, client.sendall)
                elif b"\nupgrade: websocket" in switched:
                    _relay_websocket(from_kwok, client.sendall)
                else:
                    pipe(from_kwok, client)
            finally:
                finish()


def _read_head(reader) -> bytes:
    """An HTTP request's or response's head, through its blank line."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = reader.readline(65536)
        if not line:
            raise EOFError
        head += line
    return head


class KubeletRelay(socketserver.ThreadingTCPServer):
    """The kubelet endpoint of every node: TLS with the kubelet certificate, then kwok's server in
    plain HTTP (kwok's listener serves both)."""

    daemon_threads = True

    def __init__(self, port: int, upstream_port: int, cert: Path, key: Path):
        super().__init__(("127.0.0.1", port), KubeletRelayHandler)
        self.upstream = ("127.0.0.1", upstream_port)
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(cert, key)
