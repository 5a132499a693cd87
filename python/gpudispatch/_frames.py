"""Protocol 2 framing (docs/protocol.md): the 24-byte header, exact reads, whole writes.

Header, little-endian: magic b"GD", version u8 (2), type u8, status u8, flags u8,
reserved u16 (0), attempt u32, length u32, task id u64; then `length` payload bytes.
"""

import os
import struct

MAGIC = b"GD"
VERSION = 2

HELLO = 1
READY = 2
SETUP_FAIL = 3
TASK = 4
RESULT = 5
CLEANUP_FAIL = 6

TYPE_NAMES = {HELLO: "HELLO", READY: "READY", SETUP_FAIL: "SETUP_FAIL",
              TASK: "TASK", RESULT: "RESULT", CLEANUP_FAIL: "CLEANUP_FAIL"}

STATUS_OK = 0
STATUS_ERROR = 1
FLAG_JSON = 0x01

#: the wire limit of gpudispatch (GD_REC_MAX_PAYLOAD in src/wire.h)
MAX_PAYLOAD = 0x7FFFFFFF - 4096

HEADER = struct.Struct("<2sBBBBHIIQ")
HEADER_SIZE = HEADER.size  # 24

_READ_SIZE = 65536
_SMALL = 65536  # payloads up to this go out in one write together with the header


class ProtocolError(Exception):
    """The request channel broke the protocol: a short or malformed frame."""


def pack_header(ftype, length, task_id=0, attempt=0, status=0, flags=0):
    return HEADER.pack(MAGIC, VERSION, ftype, status, flags, 0, attempt, length, task_id)


def unpack_header(data, offset=0):
    """Return (type, status, flags, attempt, length, task_id); ProtocolError if malformed."""
    magic, version, ftype, status, flags, reserved, attempt, length, task_id = \
        HEADER.unpack_from(data, offset)
    if magic != MAGIC:
        raise ProtocolError("a frame that does not start with 'GD' (got %r)" % (magic,))
    if version != VERSION:
        raise ProtocolError("a frame of protocol version %d, expected %d" % (version, VERSION))
    if ftype not in TYPE_NAMES:
        raise ProtocolError("a frame of unknown type %d" % ftype)
    if reserved != 0:
        raise ProtocolError("a frame whose reserved field is %d, not 0" % reserved)
    if length > MAX_PAYLOAD:
        raise ProtocolError("a frame of %d payload bytes, over the limit %d" % (length, MAX_PAYLOAD))
    return ftype, status, flags, attempt, length, task_id


def write_all(fd, data):
    """os.write until every byte of data is written (partial writes are continued)."""
    n = os.write(fd, data)
    total = len(data)
    if n == total:
        return
    view = memoryview(data)
    while n < total:
        n += os.write(fd, view[n:])


def write_frame(fd, ftype, payload=b"", task_id=0, attempt=0, status=0, flags=0):
    """Write one frame. payload: bytes-like (bytes, bytearray, contiguous memoryview)."""
    length = len(payload)
    if length > MAX_PAYLOAD:
        raise ValueError("a payload of %d bytes is over the wire limit of %d" % (length, MAX_PAYLOAD))
    header = HEADER.pack(MAGIC, VERSION, ftype, status, flags, 0, attempt, length, task_id)
    if length <= _SMALL:
        write_all(fd, header + payload if length else header)
    else:  # no copy of a big payload: header, then the payload itself
        write_all(fd, header)
        write_all(fd, payload)


class FrameReader:
    """Read frames from a file descriptor through a buffer of os.read()s (64 KiB)."""

    __slots__ = ("fd", "_buf", "_pos")

    def __init__(self, fd):
        self.fd = fd
        self._buf = b""
        self._pos = 0

    def _fill(self, need):
        """Make `need` unread bytes available; return how many are (fewer only at EOF)."""
        avail = len(self._buf) - self._pos
        chunks = [self._buf[self._pos:]] if avail else []
        while avail < need:
            data = os.read(self.fd, max(need - avail, _READ_SIZE))
            if not data:
                break
            chunks.append(data)
            avail += len(data)
        self._buf = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._pos = 0
        return avail

    def read_frame(self):
        """Return (type, status, flags, attempt, task_id, payload), or None at end of
        file on a frame boundary. End of file inside a frame raises ProtocolError."""
        if len(self._buf) - self._pos < HEADER_SIZE:
            got = self._fill(HEADER_SIZE)
            if got == 0:
                return None
            if got < HEADER_SIZE:
                raise ProtocolError("end of file inside a frame header (%d of %d bytes)"
                                    % (got, HEADER_SIZE))
        buf, pos = self._buf, self._pos
        ftype, status, flags, attempt, length, task_id = unpack_header(buf, pos)
        start = pos + HEADER_SIZE
        end = start + length
        if end > len(buf):
            self._pos = start
            got = self._fill(length)
            if got < length:
                raise ProtocolError("end of file inside a frame payload (%d of %d bytes)"
                                    % (got, length))
            buf, start, end = self._buf, 0, length
        self._pos = end
        payload = buf if (start == 0 and end == len(buf)) else buf[start:end]
        return ftype, status, flags, attempt, task_id, payload
