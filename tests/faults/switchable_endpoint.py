"""A loopback endpoint in front of a server that can go away and come back on the same port.

Killing moto's server loses the bucket (it keeps state in memory), so nothing could be said
about what an outage left behind. This endpoint goes away exactly as a killed server does for
its clients (new connections refused, open ones cut mid-request) while moto behind it keeps
the bucket: a test can look at what a reader would see, then bring the endpoint back and rerun.
"""

import contextlib
import socket
import threading
import time

from tests.conftest import free_port


class SwitchableEndpoint:
    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.went_down_at: float | None = None  # time.perf_counter() of the last outage
        self.up()

    @property
    def is_up(self) -> bool:
        return self._listener is not None

    def up(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))  # SO_REUSEADDR: same port again
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """From now on connecting is refused; requests in flight lose their connection."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        self.went_down_at = time.perf_counter()
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the accepting thread
        listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # the endpoint went down
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, server}
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(1 << 16):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)  # pass the end of the stream on
        with self._lock:  # each socket is read by one pump only: that pump closes it
            self._open.discard(source)
        source.close()
