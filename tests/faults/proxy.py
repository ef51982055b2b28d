"""A TCP proxy on 127.0.0.1 that can cut every connection and refuse new ones for a while.

From a client's side this is what a server restart looks like: established connections reset,
connections refused, then the server is back on the same address.
"""

from __future__ import annotations

import socket
import threading
import time


class CuttableProxy:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.host, self.target = host, target_port
        self._listener = self._listen(0)
        self.port = self._listener.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _listen(self, port: int) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, port))
        s.listen(64)
        return s

    def _accept_loop(self) -> None:
        while not self._stop:
            listener = self._listener
            try:
                client, _ = listener.accept()
            except OSError:
                time.sleep(0.05)  # the listener was closed by cut(); wait for the new one
                continue
            try:
                upstream = socket.create_connection((self.host, self.target), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def down(self) -> None:
        """Reset every connection and refuse new ones until :meth:`up`.

        ``shutdown`` before ``close``: closing a socket that another thread is blocked on (in ``accept`` or
        ``recv``) does not end that call on Linux, and the connection would live on."""
        listener = self._listener
        try:
            listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:  # linger 0: the close that follows (in the pump threads) sends a reset, not a FIN
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def up(self) -> None:
        """Accept connections again, on the same port."""
        self._listener = self._listen(self.port)

    def close(self) -> None:
        self._stop = True
        self._listener.close()
        with self._lock:
            for s in self._conns:
                try:
                    s.close()
                except OSError:
                    pass


class HoldingHttpProxy:
    """An HTTP/1.1 proxy on 127.0.0.1 that can hold write requests (PUT, POST, DELETE) until released.

    Requests are read one at a time per connection (Content-Length bodies, as the S3 client sends
    them) and forwarded; while ``hold_writes`` is set, a write waits before it is forwarded, so the
    caller's durable writes are in flight for as long as the test wants. ``held`` counts the writes
    that waited. Reads pass through.
    """

    WRITES = (b"PUT", b"POST", b"DELETE")

    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.host, self.target = host, target_port
        self.hold_writes = threading.Event()
        self.released = threading.Event()
        self.held = 0
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def hold(self) -> None:
        self.released.clear()
        self.hold_writes.set()

    def release(self) -> None:
        self.hold_writes.clear()
        self.released.set()

    def _accept_loop(self) -> None:
        while not self._stop:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection((self.host, self.target), timeout=30)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=CuttableProxy._pump, args=(upstream, client), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = client.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                while len(buf) < length:
                    data = client.recv(65536)
                    if not data:
                        return
                    buf += data
                body, buf = buf[:length], buf[length:]
                if head.split(b" ", 1)[0] in self.WRITES and self.hold_writes.is_set():
                    with self._lock:
                        self.held += 1
                    self.released.wait(300)
                upstream.sendall(head + b"\r\n\r\n" + body)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self) -> None:
        self._stop = True
        self.release()
        self._listener.close()
