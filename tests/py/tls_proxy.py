#!/usr/bin/env python3
"""TLS terminator for the test broker (tansu 0.6.0 cannot serve TLS itself):
client --TLS--> 127.0.0.1:LISTEN --plain--> 127.0.0.1:UPSTREAM. With a client CA,
clients must present a certificate it signed (mutual TLS)."""
import asyncio
import ssl
import sys

listen, upstream, cert, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
if len(sys.argv) > 5:
    ctx.load_verify_locations(sys.argv[5])
    ctx.verify_mode = ssl.CERT_REQUIRED


async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    except Exception:
        pass
    finally:
        w.close()


async def handle(cr, cw):
    try:
        ur, uw = await asyncio.open_connection("127.0.0.1", upstream)
    except OSError:
        cw.close()
        return
    await asyncio.gather(pipe(cr, uw), pipe(ur, cw))


async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", listen, ssl=ctx)
    async with srv:
        await srv.serve_forever()


asyncio.run(main())
