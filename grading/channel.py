"""The grader's channel to the worker: plain data in length-prefixed frames, never pickle.

Standalone on purpose (standard library and numpy only): the worker runs a copy of this file
inside its sandbox, where the grading package is absent.

A frame is an 8-byte little-endian length followed by that many bytes of one encoded value.
Values are built from a closed set of types, each a one-byte tag and its payload:

    N None, T True, F False, i int (8 bytes, signed), f float (8 bytes), s str (u32 length,
    UTF-8), y bytes (u32 length), a ndarray (dtype string, ndim, u64 dims, raw C-order data),
    t tuple / l list (u32 count, items), d dict (u32 count, str keys and values),
    D a numpy dtype (dtype string; numpy scalar types like np.float64 travel as their dtype),
    r a worker-side object (u64 handle), R a grader-side object (u64 handle).

Only numeric and boolean array dtypes travel (no object arrays). The decoder reads each byte
once (linear time), checks every count and size against the bytes that are left before it
allocates, and caps the nesting depth; a frame longer than the reader's cap is refused before
anything is allocated for it. Anything else is a ChannelError.
"""

from __future__ import annotations

import select
import struct
import time

import numpy as np

# Nesting deeper than this is refused (a tuple of a tuple of ... built to exhaust the stack).
MAX_DEPTH = 64
# The default cap on one frame, in bytes.
MAX_FRAME_BYTES = 256 * 1024 * 1024
HEADER = struct.Struct("<Q")
ALLOWED_KINDS = "biufc"  # bool, signed, unsigned, float, complex


class ChannelError(Exception):
    """A frame could not be sent, read or decoded (closed, malformed, oversized or late)."""


class Handle:
    """An object that lives on the other side of the channel, named by a number."""

    __slots__ = ("side", "number")

    def __init__(self, side: str, number: int):
        self.side, self.number = side, number

    def __repr__(self) -> str:
        owner = "submission" if self.side == "r" else "grader"
        return f"<{owner} object #{self.number}>"

    def __eq__(self, other):
        return isinstance(other, Handle) and (self.side, self.number) == (other.side, other.number)

    def __hash__(self):
        return hash((self.side, self.number))

    def __deepcopy__(self, memo):
        return self


def _dtype_ok(dtype: np.dtype) -> bool:
    return dtype.kind in ALLOWED_KINDS and dtype.fields is None and dtype.subdtype is None


def encode(value, to_handle=None) -> bytes:
    """The bytes of value.

    Args:
        value: plain data (None, bool, int, float, str, bytes, numpy arrays and scalars, tuples,
            lists, dicts with str keys) and Handle objects.
        to_handle: callable(obj) -> Handle for anything else (the worker keeps such objects and
            sends a handle); None to refuse them with ChannelError.
    """
    parts: list[bytes] = []

    def put(v, depth):
        if depth > MAX_DEPTH:
            raise ChannelError(f"encode: nesting deeper than {MAX_DEPTH}.")
        t = type(v)
        if v is None:
            parts.append(b"N")
        elif t is bool:
            parts.append(b"T" if v else b"F")
        elif t is int:
            if not -(2**63) <= v < 2**63:
                raise ChannelError("encode: an int outside the 64-bit range.")
            parts.append(b"i" + struct.pack("<q", v))
        elif t is float:
            parts.append(b"f" + struct.pack("<d", v))
        elif t is str:
            data = v.encode("utf-8", "surrogatepass")
            parts.append(b"s" + struct.pack("<I", len(data)) + data)
        elif t is bytes:
            parts.append(b"y" + struct.pack("<I", len(v)) + v)
        elif t is np.ndarray or isinstance(v, np.generic):
            array = np.asarray(v)
            if type(array) is not np.ndarray or not _dtype_ok(array.dtype):
                if to_handle is None:
                    raise ChannelError(f"encode: arrays of dtype {array.dtype} do not travel.")
                put(to_handle(v), depth)
                return
            dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
            name = dtype.str.encode()
            header = b"a" + struct.pack("<B", len(name)) + name + struct.pack("<B", array.ndim)
            header += b"".join(struct.pack("<Q", n) for n in array.shape)
            parts.append(header)
            parts.append(np.ascontiguousarray(array, dtype=dtype).tobytes())
        elif t is tuple or t is list:
            parts.append((b"t" if t is tuple else b"l") + struct.pack("<I", len(v)))
            for item in v:
                put(item, depth + 1)
        elif t is dict and all(type(k) is str for k in v):
            parts.append(b"d" + struct.pack("<I", len(v)))
            for key, item in v.items():
                put(key, depth + 1)
                put(item, depth + 1)
        elif isinstance(v, np.dtype) or (isinstance(v, type) and issubclass(v, np.generic)):
            dtype = np.dtype(v)
            if not _dtype_ok(dtype):
                raise ChannelError(f"encode: dtype {dtype} does not travel.")
            name = dtype.str.encode()
            parts.append(b"D" + struct.pack("<B", len(name)) + name)
        elif t is Handle:
            parts.append(v.side.encode() + struct.pack("<Q", v.number))
        elif to_handle is not None:
            put(to_handle(v), depth)
        else:
            raise ChannelError(f"encode: a {t.__name__} is not plain data.")

    put(value, 0)
    return b"".join(parts)


def decode(data) -> object:
    """The value encoded in data (bytes-like); ChannelError when it is not exactly one valid value."""
    view = memoryview(data).cast("B")
    end = len(view)
    pos = 0

    def take(n):
        nonlocal pos
        if n < 0 or pos + n > end:
            raise ChannelError(f"decode: the frame ends {pos + n - end} bytes early.")
        chunk = view[pos:pos + n]
        pos += n
        return chunk

    def count(items_left_min=1):
        (n,) = struct.unpack("<I", take(4))
        if n * items_left_min > end - pos:
            raise ChannelError(f"decode: a count of {n} items exceeds the {end - pos} bytes left.")
        return n

    def get(depth):
        if depth > MAX_DEPTH:
            raise ChannelError(f"decode: nesting deeper than {MAX_DEPTH}.")
        tag = bytes(take(1))
        if tag == b"N":
            return None
        if tag == b"T":
            return True
        if tag == b"F":
            return False
        if tag == b"i":
            return struct.unpack("<q", take(8))[0]
        if tag == b"f":
            return struct.unpack("<d", take(8))[0]
        if tag == b"s":
            try:
                return bytes(take(struct.unpack("<I", take(4))[0])).decode("utf-8", "surrogatepass")
            except UnicodeDecodeError as exc:
                raise ChannelError(f"decode: a string is not UTF-8 ({exc.reason}).") from None
        if tag == b"y":
            return bytes(take(struct.unpack("<I", take(4))[0]))
        if tag == b"D":
            (length,) = struct.unpack("<B", take(1))
            try:
                dtype = np.dtype(bytes(take(length)).decode("ascii"))
            except (TypeError, ValueError, UnicodeDecodeError):
                raise ChannelError("decode: an unknown dtype.") from None
            if not _dtype_ok(dtype):
                raise ChannelError(f"decode: dtype {dtype} does not travel.")
            return dtype
        if tag == b"a":
            (length,) = struct.unpack("<B", take(1))
            try:
                dtype = np.dtype(bytes(take(length)).decode("ascii"))
            except (TypeError, ValueError, UnicodeDecodeError):
                raise ChannelError("decode: an array with an unknown dtype.") from None
            if not _dtype_ok(dtype) or dtype.byteorder == ">":
                raise ChannelError(f"decode: arrays of dtype {dtype} do not travel.")
            (ndim,) = struct.unpack("<B", take(1))
            if ndim > 32:
                raise ChannelError(f"decode: an array of {ndim} dimensions.")
            shape = struct.unpack(f"<{ndim}Q", take(8 * ndim))
            size = 1
            for n in shape:
                size *= n
            nbytes = size * dtype.itemsize
            if nbytes > end - pos:
                raise ChannelError(f"decode: an array of {nbytes} bytes, but {end - pos} bytes are left.")
            return np.frombuffer(take(nbytes), dtype=dtype).reshape(shape).copy()
        if tag in (b"t", b"l"):
            items = [get(depth + 1) for _ in range(count())]
            return tuple(items) if tag == b"t" else items
        if tag == b"d":
            n = count(2)
            out = {}
            for _ in range(n):
                key = get(depth + 1)
                if type(key) is not str:
                    raise ChannelError("decode: a dict key that is not a str.")
                out[key] = get(depth + 1)
            return out
        if tag in (b"r", b"R"):
            return Handle(tag.decode(), struct.unpack("<Q", take(8))[0])
        raise ChannelError(f"decode: unknown tag {tag!r} at byte {pos - 1}.")

    value = get(0)
    if pos != end:
        raise ChannelError(f"decode: {end - pos} bytes left over after the value.")
    return value


class Channel:
    """One end of a stream socket carrying frames; reads are bounded in size and time.

    Args:
        sock: a connected stream socket (socket.socketpair's end).
        max_frame_bytes: frames longer than this are refused.
        max_total_bytes: once this many bytes were read in all, every further read is refused.
        peer_fd: a descriptor that turns readable when the other side's process ends (a pidfd);
            a read that then finds nothing waiting fails with EOFError, even if some other
            process (a child of the peer) still holds the socket open.
    """

    def __init__(self, sock, max_frame_bytes: int = MAX_FRAME_BYTES, max_total_bytes: int | None = None,
                 peer_fd: int | None = None):
        self.sock = sock
        self.max_frame_bytes = max_frame_bytes
        self.max_total_bytes = max_total_bytes
        self.peer_fd = peer_fd
        self.bytes_read = 0

    def send(self, value, to_handle=None) -> None:
        """Encode value and write it as one frame.

        Raises:
            ChannelError: value is not plain data (and to_handle is None).
            EOFError: the other side is gone.
        """
        data = encode(value, to_handle)
        try:
            self.sock.sendall(HEADER.pack(len(data)) + data)
        except OSError as exc:
            raise EOFError(f"the other side closed the channel ({exc.strerror or exc})") from None

    def _read_into(self, view, deadline):
        got = 0
        waited = [self.sock] if self.peer_fd is None else [self.sock, self.peer_fd]
        while got < len(view):
            if deadline is not None or self.peer_fd is not None:
                # At or past the deadline, look once more: what already waits counts as in time.
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                ready, _, _ = select.select(waited, [], [], left)
                if not ready:
                    if left == 0.0:
                        raise TimeoutError("no complete answer in time")
                    continue
                if self.sock not in ready:  # the peer's process ended and nothing is left to read
                    raise EOFError("the other side's process ended")
            try:
                n = self.sock.recv_into(view[got:], len(view) - got)
            except OSError as exc:
                raise ChannelError(f"the channel broke ({exc.strerror or exc}).") from None
            if n == 0:
                raise EOFError("the other side closed the channel")
            got += n

    def recv(self, timeout: float | None = None):
        """The next frame's value.

        Raises:
            TimeoutError: nothing complete arrived within timeout seconds.
            EOFError: the other side closed the channel.
            ChannelError: an oversized or malformed frame.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        header = bytearray(HEADER.size)
        self._read_into(memoryview(header), deadline)
        (length,) = HEADER.unpack(header)
        if length > self.max_frame_bytes:
            raise ChannelError(f"a frame of {length} bytes is over the cap of {self.max_frame_bytes}.")
        if self.max_total_bytes is not None and self.bytes_read + length > self.max_total_bytes:
            raise ChannelError(f"more than {self.max_total_bytes} bytes in all came over the channel.")
        body = bytearray(length)
        self._read_into(memoryview(body), deadline)
        self.bytes_read += HEADER.size + length
        return decode(body)

    def close(self) -> None:
        """Close the socket (idempotent)."""
        try:
            self.sock.close()
        except OSError:
            pass


