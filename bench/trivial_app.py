"""Tiny stdlib asyncio HTTP/1.1 "hello" server: the ceiling check for the wrk set-up."""
import argparse
import asyncio

BODY = b'{"hello": "world"}'
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)


class Hello(asyncio.Protocol):
    """Answers every request (keep-alive, pipelining-safe) with a fixed 200 JSON body."""

    def connection_made(self, transport):
        """Remember the transport and start with an empty buffer."""
        self.transport = transport
        self.buf = b""

    def data_received(self, data):
        """Answer each complete request in the buffer (headers plus Content-Length body)."""
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            length = 0
            pos = head.find(b"content-length:")
            if pos >= 0:
                length = int(head[pos + 15:].split(b"\r\n", 1)[0].strip() or 0)
            total = end + 4 + length
            if len(self.buf) < total:
                return
            self.buf = self.buf[total:]
            self.transport.write(RESPONSE)


async def serve(host, port):
    """Serve forever on host:port."""
    server = await asyncio.get_running_loop().create_server(Hello, host, port, backlog=512)
    async with server:
        await server.serve_forever()


def main():
    """Parse --host/--port and run."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9798)
    args = ap.parse_args()
    try:
        asyncio.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
