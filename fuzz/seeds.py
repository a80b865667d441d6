#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/seeds/<target>/) from the messages the tests
already use: the RFC 4475 torture messages, the SIPp scenarios' requests (placeholders filled
in as SIPp would), the SDP bodies in both, the Authorization headers in both, the demo
configuration, and hand-built RTP, RTCP and RFC 4733 packets. Run it from anywhere; it
rewrites the seeds directory."""
import hashlib, pathlib, re, shutil, struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"

FILL = {
    "service": "1001", "local_ip": "127.0.0.1", "remote_ip": "127.0.0.1", "media_ip": "127.0.0.1",
    "local_port": "5070", "remote_port": "5060", "media_port": "6000", "rtp_port": "6000",
    "transport": "UDP", "pid": "4242", "call_number": "1", "call_id": "1-4242@127.0.0.1",
    "branch": "z9hG4bK-4242-1-0", "media_ip_type": "4", "local_ip_type": "4",
    "peer_tag_param": ";tag=peer1", "routes": "", "next_url": "sip:1001@127.0.0.1:5070",
    "ext": "1001", "number": "998901234567", "field0": "1001", "field1": "demo1001",
    "uas_port": "5080", "cseq": "1",
}
LAST = {
    "Via:": "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-last",
    "From:": "From: <sip:998901234567@127.0.0.1>;tag=from1",
    "To:": "To: <sip:1001@127.0.0.1>;tag=to1",
    "Call-ID:": "Call-ID: last-1@127.0.0.1",
    "CSeq:": "CSeq: 1 INVITE",
    "Record-Route:": "",
    "Contact:": "Contact: <sip:1001@127.0.0.1:5070>",
}
AUTH = ('Authorization: Digest username="1001", realm="navbat", '
        'nonce="65a1b2c3.0123456789abcdef.00112233445566778899", uri="sip:127.0.0.1:5060", '
        'response="0123456789abcdef0123456789abcdef", algorithm=MD5, qop=auth, '
        'nc=00000001, cnonce="0a4f113b"')


def put(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / name).write_bytes(data)


def fill(text):
    def sub(m):
        key = m.group(1)
        if key.startswith("last_"):
            return LAST.get(key[5:], "")
        if key.startswith("authentication"):
            return AUTH
        if key == "len":
            return m.group(0)  # filled once the body is known
        return FILL.get(key, "x")
    return re.sub(r"\[([A-Za-z_][A-Za-z0-9_:. =-]*)\]", sub, text)


def sipp_messages():
    for xml in sorted((ROOT / "tests" / "sipp").glob("*.xml")):
        text = xml.read_text()
        for i, block in enumerate(re.findall(r"<send[^>]*>\s*<!\[CDATA\[(.*?)\]\]>", text, re.S)):
            lines = [l.strip() for l in block.strip("\n").splitlines()]
            while lines and not lines[0]:
                lines.pop(0)
            if not lines:
                continue
            try:
                blank = lines.index("")
                head, body = lines[:blank], [l for l in lines[blank + 1:] if l]
            except ValueError:
                head, body = lines, []
            body_text = "".join(l + "\r\n" for l in body)
            head = [fill(l) for l in head if fill(l) != ""]
            msg = "\r\n".join(head) + "\r\n\r\n" + fill(body_text)
            msg = msg.replace("[len]", str(len(fill(body_text).encode())))
            yield f"{xml.stem}-{i}", msg


def main():
    if SEEDS.exists():
        shutil.rmtree(SEEDS)
    sdp_bodies = {}
    for dat in sorted((ROOT / "tests" / "fixtures" / "rfc4475").glob("*.dat")):
        raw = dat.read_bytes()
        put("sip_screen", f"rfc4475-{dat.stem}", raw)
        put("sip_parse", f"rfc4475-{dat.stem}", raw)
        if b"v=0" in raw:
            sdp_bodies[f"rfc4475-{dat.stem}"] = raw[raw.index(b"v=0"):]
        for m in re.finditer(rb"(?im)^(?:proxy-)?authorization:\s*(.*(?:\r?\n[ \t].*)*)", raw):
            put("digest", f"rfc4475-{dat.stem}", m.group(1))
    for name, msg in sipp_messages():
        put("sip_screen", f"sipp-{name}", msg)
        put("sip_parse", f"sipp-{name}", msg)
        if "v=0" in msg:
            sdp_bodies[f"sipp-{name}"] = msg[msg.index("v=0"):].encode()
    seen = set()
    for name, body in sorted(sdp_bodies.items()):
        h = hashlib.sha1(body).hexdigest()
        if h not in seen:
            seen.add(h)
            put("sdp", name, body)
    put("digest", "sipp-authentication", AUTH.split(": ", 1)[1])
    put("digest", "rfc2069-no-qop", 'Digest username="1001", realm="navbat", nonce="abc", '
        'uri="sip:127.0.0.1", response="0123456789abcdef0123456789abcdef"')
    put("digest", "escaped-quotes", 'Digest username="a\\"b", realm="r,x", nonce="n", '
        'uri="sip:a@b", response="00", qop="auth", nc=1, cnonce="c"')
    put("config", "navbat.toml", (ROOT / "config" / "navbat.toml").read_bytes())

    def rtp(pt, seq, ts, ssrc, payload, marker=False, csrc=(), ext=None, pad=0):
        b0 = 0x80 | len(csrc) | (0x10 if ext is not None else 0) | (0x20 if pad else 0)
        out = struct.pack("!BBHII", b0, (0x80 if marker else 0) | pt, seq, ts, ssrc)
        out += b"".join(struct.pack("!I", c) for c in csrc)
        if ext is not None:
            out += struct.pack("!HH", 0xBEDE, len(ext) // 4) + ext
        out += payload
        if pad:
            out += b"\0" * (pad - 1) + bytes([pad])
        return out

    put("rtp", "pcmu-20ms", rtp(0, 1, 160, 0x1234, b"\xff" * 160, marker=True))
    put("rtp", "pcma-csrc", rtp(8, 2, 320, 0x1234, b"\xd5" * 160, csrc=(1, 2)))
    put("rtp", "extension", rtp(0, 3, 480, 0x1234, b"\xff" * 40, ext=b"\x10\x01\x00\x00"))
    put("rtp", "padding", rtp(0, 4, 640, 0x1234, b"\xff" * 40, pad=4))
    put("rtp", "telephone-event", rtp(101, 5, 800, 0x1234, b"\x05\x0a\x00\xa0", marker=True))
    put("rtp", "stream", b"".join(rtp(0, s, s * 160, 7, b"") + struct.pack("!I", s * 170)
                                  for s in (1, 2, 4, 3, 65535, 0, 1)))

    sr = struct.pack("!BBHI", 0x81, 200, 12, 0x1234) + struct.pack("!QIII", 0xE1234567_89ABCDEF, 160, 10, 1600)
    sr += struct.pack("!IIIIII", 0x5678, 0x01000002, 0x10005, 12, 0, 0)
    sdes = struct.pack("!BBHI", 0x81, 202, 3, 0x1234) + b"\x01\x06navbat\x00\x00\x00\x00"[:8]
    rr = struct.pack("!BBHI", 0x80, 201, 1, 0x1234)
    bye = struct.pack("!BBHI", 0x81, 203, 1, 0x1234)
    put("rtcp", "sr-sdes", sr + sdes)
    put("rtcp", "rr", rr)
    put("rtcp", "rr-sdes-bye", rr + sdes + bye)
    put("rtcp", "app", rr + struct.pack("!BBHI4s", 0x80, 204, 2, 0x1234, b"NAVB"))

    def ev(ssrc, ts, event, end, duration):
        return struct.pack("!IIBBH", ssrc, ts, event, (0x80 if end else 0) | 10, duration)
    put("dtmf", "digit-5", ev(1, 160, 5, False, 160) + ev(1, 160, 5, False, 320)
        + ev(1, 160, 5, True, 480) * 3)
    put("dtmf", "star-hash", ev(1, 800, 10, True, 400) + ev(1, 1600, 11, True, 400))
    put("dtmf", "reordered", ev(1, 3200, 1, True, 400) + ev(1, 1600, 2, True, 400)
        + ev(2, 1600, 15, True, 400))
    put("dtmf", "one-payload", b"\x09\x8a\x03\x20")


main()
