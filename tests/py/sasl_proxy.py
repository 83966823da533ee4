#!/usr/bin/env python3
"""SASL front for the test broker (tansu 0.6.0 cannot authenticate clients itself):
client --SASL_PLAINTEXT--> 127.0.0.1:LISTEN --plain--> 127.0.0.1:UPSTREAM.

usage: sasl_proxy.py LISTEN_PORT UPSTREAM_PORT USER PASSWORD
                     [--mechanisms SCRAM-SHA-256,SCRAM-SHA-512,PLAIN]

Like a broker whose listener requires SASL: before authentication a connection may send
only ApiVersions (forwarded to the broker, its answer made to advertise the SASL
versions implemented here), SaslHandshake v0/v1 and SaslAuthenticate v0-v2 (answered
here); anything else closes it. SCRAM-SHA-256/512 (RFC 5802, RFC 7677: random salt,
4096 iterations, the client's proof verified, the server signature sent) and PLAIN.
A failed authentication is answered with SASL_AUTHENTICATION_FAILED (58) and the
connection closed. Once authenticated, frames pass verbatim both ways.

One line per connection outcome on stderr (never the password)."""
import asyncio
import base64
import hashlib
import hmac
import os
import struct
import sys

API_SASL_HANDSHAKE = 17
API_API_VERSIONS = 18
API_SASL_AUTHENTICATE = 36
# Versions answered here: (min, max).
IMPLEMENTED = {API_SASL_HANDSHAKE: (0, 1), API_SASL_AUTHENTICATE: (0, 2)}
NAMES = {
    API_SASL_HANDSHAKE: "SaslHandshake",
    API_API_VERSIONS: "ApiVersions",
    API_SASL_AUTHENTICATE: "SaslAuthenticate",
}
UNSUPPORTED_SASL_MECHANISM = 33
ILLEGAL_SASL_STATE = 34
SASL_AUTHENTICATION_FAILED = 58
ITERATIONS = 4096
# Before authentication, larger frames are refused (as Kafka's sasl max receive size).
MAX_PRE_AUTH_FRAME = 512 * 1024
HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}


def log(msg):
    print(f"sasl_proxy: {msg}", file=sys.stderr, flush=True)


class Closed(Exception):
    """The connection must be closed (after an optional last frame)."""


class Failed(Exception):
    """Authentication failed: answer 58 with this message, then close."""


# --- wire helpers -----------------------------------------------------------------


class Reader:
    def __init__(self, data, pos=0):
        self.d, self.p = data, pos

    def take(self, n):
        if self.p + n > len(self.d):
            raise Closed("truncated frame")
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def uvarint(self):
        r = shift = 0
        while True:
            b = self.take(1)[0]
            r |= (b & 0x7F) << shift
            if not b & 0x80:
                return r
            shift += 7
            if shift > 28:
                raise Closed("varint too long")

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def bytes32(self):
        n = self.i32()
        return None if n < 0 else self.take(n)

    def compact_bytes(self):
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1)

    def tagged_fields(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())

    def rest(self):
        return self.d[self.p:]


def uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def string(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def compact_string(s):
    if s is None:
        return b"\x00"
    b = s.encode()
    return uvarint(len(b) + 1) + b


def flexible(api, version):
    return (api == API_API_VERSIONS and version >= 3) or (
        api == API_SASL_AUTHENTICATE and version >= 2
    )


async def read_frame(r, limit=None):
    """One size-prefixed frame, or None at end of stream."""
    try:
        head = await r.readexactly(4)
    except asyncio.IncompleteReadError:
        return None
    (n,) = struct.unpack(">i", head)
    if n < 0 or (limit is not None and n > limit):
        raise Closed(f"frame length {n}")
    try:
        return await r.readexactly(n)
    except asyncio.IncompleteReadError:
        return None


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


def response(api, version, correlation, body):
    # ApiVersions answers always use response header v0 (clients parse them before
    # knowing which versions the broker speaks).
    flex = flexible(api, version) and api != API_API_VERSIONS
    return frame(struct.pack(">i", correlation) + (b"\x00" if flex else b"") + body)


# --- ApiVersions ------------------------------------------------------------------


def rewrite_api_versions(version, payload):
    """The broker's ApiVersions response with the SASL APIs at the versions answered
    here (replaced, or added if missing)."""
    r = Reader(payload)
    correlation = r.i32()
    error = r.i16()
    if error != 0:
        # e.g. UNSUPPORTED_VERSION: a v0 body the client retries from; as it is.
        return payload
    flex = version >= 3
    n = r.uvarint() - 1 if flex else r.i32()
    entries = []
    for _ in range(n):
        key, lo, hi = struct.unpack(">hhh", r.take(6))
        tags = b""
        if flex:
            start = r.p
            r.tagged_fields()
            tags = r.d[start:r.p]
        entries.append([key, lo, hi, tags])
    seen = set()
    for e in entries:
        if e[0] in IMPLEMENTED:
            e[1], e[2] = IMPLEMENTED[e[0]]
            seen.add(e[0])
    for key, (lo, hi) in sorted(IMPLEMENTED.items()):
        if key not in seen:
            entries.append([key, lo, hi, b"\x00" if flex else b""])
    out = struct.pack(">ih", correlation, error)
    out += uvarint(len(entries) + 1) if flex else struct.pack(">i", len(entries))
    for key, lo, hi, tags in entries:
        out += struct.pack(">hhh", key, lo, hi) + tags
    return out + r.rest()


# --- SASL mechanisms --------------------------------------------------------------


class Plain:
    def __init__(self, mechanism, user, password):
        self.user, self.password = user, password
        self.done = False

    def step(self, token):
        parts = token.split(b"\x00")
        if len(parts) != 3:
            raise Failed("malformed PLAIN message")
        authzid, authcid, passwd = parts
        ok = hmac.compare_digest(authcid, self.user.encode()) & hmac.compare_digest(
            passwd, self.password.encode()
        )
        if not ok or authzid not in (b"", authcid):
            raise Failed("Authentication failed: Invalid username or password")
        self.done = True
        return b""


class Scram:
    """The server side of one SCRAM exchange."""

    def __init__(self, mechanism, user, password):
        self.mechanism = mechanism
        self.hash = HASHES[mechanism]
        self.user = user
        self.salt = os.urandom(16)
        salted = hashlib.pbkdf2_hmac(self.hash, password.encode(), self.salt, ITERATIONS)
        self.stored_key = hashlib.new(self.hash, self.hmac(salted, b"Client Key")).digest()
        self.server_key = self.hmac(salted, b"Server Key")
        self.state = "first"
        self.done = False

    def hmac(self, key, data):
        return hmac.new(key, data, self.hash).digest()

    def fail(self, why):
        log(f"{self.mechanism}: {why}")
        raise Failed(
            f"Authentication failed during authentication due to invalid credentials with SASL mechanism {self.mechanism}"
        )

    def step(self, token):
        try:
            text = token.decode()
        except UnicodeDecodeError:
            raise Failed("SCRAM message is not UTF-8")
        if self.state == "first":
            return self.first(text)
        if self.state == "final":
            return self.final(text)
        raise Failed("unexpected SCRAM message after the exchange")

    def first(self, text):
        # gs2-header: cbind-flag "," [authzid] ","
        parts = text.split(",", 2)
        if len(parts) != 3 or parts[0] not in ("n", "y"):
            raise Failed("malformed or channel-binding SCRAM client-first message")
        self.gs2_header = f"{parts[0]},{parts[1]},"
        self.client_first_bare = parts[2]
        attrs = self.client_first_bare.split(",")
        if len(attrs) < 2 or not attrs[0].startswith("n=") or not attrs[1].startswith("r="):
            raise Failed("malformed SCRAM client-first message")
        name = attrs[0][2:].replace("=2C", ",").replace("=3D", "=")
        self.user_ok = name == self.user
        self.user_seen = name
        client_nonce = attrs[1][2:]
        if not client_nonce:
            raise Failed("empty SCRAM client nonce")
        self.nonce = client_nonce + base64.b64encode(os.urandom(18)).decode()
        self.server_first = (
            f"r={self.nonce},s={base64.b64encode(self.salt).decode()},i={ITERATIONS}"
        )
        self.state = "final"
        return self.server_first.encode()

    def final(self, text):
        self.state = "over"
        without_proof, sep, proof = text.rpartition(",p=")
        if not sep:
            self.fail("client-final message without a proof")
        attrs = dict(a.split("=", 1) for a in without_proof.split(",") if "=" in a)
        if attrs.get("c") != base64.b64encode(self.gs2_header.encode()).decode():
            self.fail(f"channel binding c={attrs.get('c')!r} does not match the gs2 header")
        if attrs.get("r") != self.nonce:
            self.fail("nonce does not match")
        try:
            proof = base64.b64decode(proof, validate=True)
        except ValueError:
            self.fail("proof is not base64")
        auth_message = ",".join(
            [self.client_first_bare, self.server_first, without_proof]
        ).encode()
        signature = self.hmac(self.stored_key, auth_message)
        if len(proof) != len(signature):
            self.fail("proof has the wrong length")
        client_key = bytes(a ^ b for a, b in zip(proof, signature))
        digest = hashlib.new(self.hash, client_key).digest()
        if not self.user_ok:
            self.fail(f"unknown user {self.user_seen!r}")
        if not hmac.compare_digest(digest, self.stored_key):
            self.fail(f"client proof of user {self.user_seen!r} is wrong")
        self.done = True
        v = base64.b64encode(self.hmac(self.server_key, auth_message)).decode()
        return f"v={v}".encode()


MECHANISMS = {"PLAIN": Plain, "SCRAM-SHA-256": Scram, "SCRAM-SHA-512": Scram}


# --- connections ------------------------------------------------------------------


class Proxy:
    def __init__(self, upstream, user, password, mechanisms):
        self.upstream, self.user, self.password = upstream, user, password
        self.mechanisms = mechanisms

    async def handle(self, cr, cw):
        peer = cw.get_extra_info("peername")
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError as e:
            log(f"{peer}: upstream unreachable: {e}")
            cw.close()
            return
        try:
            who = await self.authenticate(cr, cw, ur, uw, peer)
        except Closed as e:
            log(f"{peer}: closed before authentication: {e}")
            who = None
        except (OSError, asyncio.IncompleteReadError) as e:
            log(f"{peer}: {e!r}")
            who = None
        if who is None:
            for w in (cw, uw):
                w.close()
            return
        log(f"{peer}: authenticated {who[1]!r} with {who[0]} ({', '.join(who[2])})")
        await asyncio.gather(pipe(cr, uw), pipe(ur, cw))

    async def authenticate(self, cr, cw, ur, uw, peer):
        """Serves the connection until it authenticates: (mechanism, user, the requests
        seen), or None if it went away first."""
        seen = []
        mech = mech_name = None  # the mechanism after a handshake
        raw_tokens = False  # SaslHandshake v0: bare size-prefixed tokens follow
        while True:
            if raw_tokens:
                token = await read_frame(cr, MAX_PRE_AUTH_FRAME)
                if token is None:
                    return None
                try:
                    answer = mech.step(token)
                except Failed as e:
                    # Without Kafka framing there is no way to say why.
                    raise Closed(f"authentication failed ({e})")
                seen.append("raw token")
                cw.write(frame(answer))
                await cw.drain()
                if mech.done:
                    return (mech_name, self.user, seen)
                continue
            payload = await read_frame(cr, MAX_PRE_AUTH_FRAME)
            if payload is None:
                return None
            r = Reader(payload)
            api, version, correlation = r.i16(), r.i16(), r.i32()
            seen.append(f"{NAMES.get(api, f'api {api}')} v{version}")
            if api == API_API_VERSIONS and mech is None:
                uw.write(frame(payload))
                await uw.drain()
                answer = await read_frame(ur)
                if answer is None:
                    raise Closed("the broker closed the connection")
                cw.write(frame(rewrite_api_versions(version, answer)))
                await cw.drain()
                continue
            if api not in IMPLEMENTED:
                raise Closed(f"api {api} v{version} before authentication (seen: {', '.join(seen)})")
            lo, hi = IMPLEMENTED[api]
            if not lo <= version <= hi:
                raise Closed(f"api {api} v{version} is not implemented")
            r.string()  # client_id
            if flexible(api, version):
                r.tagged_fields()
            if api == API_SASL_HANDSHAKE:
                if mech is not None:
                    raise Closed("second SaslHandshake")
                name = r.string()
                if name not in self.mechanisms:
                    body = struct.pack(">h", UNSUPPORTED_SASL_MECHANISM)
                    body += struct.pack(">i", len(self.mechanisms))
                    body += b"".join(string(m) for m in self.mechanisms)
                    cw.write(response(api, version, correlation, body))
                    await cw.drain()
                    raise Closed(f"mechanism {name!r} is not enabled")
                mech_name = name
                mech = MECHANISMS[name](name, self.user, self.password)
                body = struct.pack(">hi", 0, len(self.mechanisms))
                body += b"".join(string(m) for m in self.mechanisms)
                cw.write(response(api, version, correlation, body))
                await cw.drain()
                raw_tokens = version == 0
                continue
            # SaslAuthenticate
            if mech is None:
                body = self.auth_body(
                    version, ILLEGAL_SASL_STATE, "SaslAuthenticate before SaslHandshake", b""
                )
                cw.write(response(api, version, correlation, body))
                await cw.drain()
                raise Closed("SaslAuthenticate before SaslHandshake")
            token = r.compact_bytes() if version >= 2 else r.bytes32()
            try:
                answer = mech.step(token or b"")
            except Failed as e:
                body = self.auth_body(version, SASL_AUTHENTICATION_FAILED, str(e), b"")
                cw.write(response(api, version, correlation, body))
                await cw.drain()
                raise Closed(f"authentication failed: {e}")
            body = self.auth_body(version, 0, None, answer)
            cw.write(response(api, version, correlation, body))
            await cw.drain()
            if mech.done:
                return (mech_name, self.user, seen)

    @staticmethod
    def auth_body(version, error, message, token):
        if version >= 2:
            body = struct.pack(">h", error) + compact_string(message)
            body += uvarint(len(token) + 1) + token
        else:
            body = struct.pack(">h", error) + string(message)
            body += struct.pack(">i", len(token)) + token
        if version >= 1:
            body += struct.pack(">q", 0)  # session_lifetime_ms: no re-authentication
        if version >= 2:
            body += b"\x00"
        return body


async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    except Exception:
        pass
    finally:
        w.close()


async def main():
    args = sys.argv[1:]
    mechanisms = ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"]
    if "--mechanisms" in args:
        i = args.index("--mechanisms")
        mechanisms = args[i + 1].split(",")
        del args[i:i + 2]
    if len(args) != 4 or any(m not in MECHANISMS for m in mechanisms):
        sys.exit(__doc__)
    listen, upstream, user, password = int(args[0]), int(args[1]), args[2], args[3]
    proxy = Proxy(upstream, user, password, mechanisms)
    srv = await asyncio.start_server(proxy.handle, "127.0.0.1", listen)
    async with srv:
        await srv.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
