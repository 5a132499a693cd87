"""Protocol 2's frames (docs/protocol.md): a 24-byte little-endian header,
then the payload."""
import os
import struct

HEADER = struct.Struct("<2sBBBBHIIQ")
MAGIC = b"GD"
VERSION = 2

HELLO, READY, SETUP_FAIL, TASK, RESULT, CLEANUP_FAIL = 1, 2, 3, 4, 5, 6
FLAG_JSON = 0x01


class ProtocolError(Exception):
    """A frame from gpudispatch that is not what protocol 2 says."""


def pack(kind, payload=b"", status=0, flags=0, attempt=0, task_id=0):
    return HEADER.pack(MAGIC, VERSION, kind, status, flags, 0, attempt, len(payload),
                       task_id) + payload


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Reader:
    """Reads whole frames from a file descriptor through a 64 KiB buffer."""

    def __init__(self, fd):
        self.fd = fd
        self.buf = bytearray()

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = os.read(self.fd, max(65536, n - len(self.buf)))
            if not chunk:
                return False
            self.buf += chunk
        return True

    def read(self):
        """\\return (kind, task_id, attempt, payload), or None at the end of the
        stream between frames; raise ProtocolError on a short or bad frame."""
        if not self._fill(HEADER.size):
            if self.buf:
                raise ProtocolError("the request pipe ended in the middle of a frame header")
            return None
        magic, version, kind, _status, _flags, _res, attempt, length, task_id = \
            HEADER.unpack_from(self.buf)
        if magic != MAGIC or version != VERSION:
            raise ProtocolError("a request frame that is not protocol 2 (%r, version %d)"
                                % (bytes(magic), version))
        if not self._fill(HEADER.size + length):
            raise ProtocolError("the request pipe ended in the middle of a frame")
        payload = bytes(self.buf[HEADER.size:HEADER.size + length])
        del self.buf[:HEADER.size + length]
        return kind, task_id, attempt, payload
