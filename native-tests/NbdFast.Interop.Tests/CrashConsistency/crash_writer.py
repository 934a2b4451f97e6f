"""Random writer for the kill -9 crash-consistency test (python3-libnbd, several requests in flight).

Usage: crash_writer.py URI SIZE SEED DEPTH

Keeps DEPTH commands in flight on one connection until the server goes away, and logs every event on
stdout, one line each, in the order this client saw them (the line number is the event's sequence):
  W id offset length fua key   a write is about to be issued (fua is 0 or 1, key a 64-bit integer)
  A id                         that write was acknowledged (success)
  E id errno                   that write failed (so it is not acknowledged)
  F id                         a flush is about to be issued
  FA id / FE id errno          that flush succeeded / failed
  END reason                   the connection is gone (or an unexpected error); nothing follows
Each write's data is determined by (offset, key): byte b of the disk written with key K is byte b%8
(little-endian) of (b // 8) XOR K, so every byte names the write that put it there and its position.
"""
import array
import random
import sys

import nbd

uri, size, seed, depth = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
out = sys.stdout
# Buffers must outlive their commands; completions drop them.
buffers = {}


def pattern(offset, length, key):
    first, last = offset >> 3, (offset + length + 7) >> 3
    positions = array.array("Q", range(first, last)).tobytes()
    keys = key.to_bytes(8, "little") * (last - first)
    words = (int.from_bytes(positions, "little") ^ int.from_bytes(keys, "little")).to_bytes(len(positions), "little")
    start = offset & 7
    return words[start:start + length]


def write_done(command_id):
    def done(error):
        buffers.pop(command_id, None)
        if error.value == 0:
            out.write(f"A {command_id}\n")
        else:
            out.write(f"E {command_id} {error.value}\n")
        return 1   # retire the command
    return done


def flush_done(command_id):
    def done(error):
        out.write(f"FA {command_id}\n" if error.value == 0 else f"FE {command_id} {error.value}\n")
        return 1
    return done


def random_extent():
    shape = rng.random()
    if shape < 0.5:       # small and unaligned: read-modify-write territory under --direct
        length = rng.randint(1, 8192)
        offset = rng.randrange(0, size - length + 1)
    elif shape < 0.85:    # 4 KiB-aligned, up to 64 KiB
        length = 4096 * rng.randint(1, 16)
        offset = 4096 * rng.randrange(0, (size - length) // 4096 + 1)
    else:                 # large and unaligned
        length = rng.randint(8192, 256 * 1024)
        offset = rng.randrange(0, size - length + 1)
    return offset, length


h = nbd.NBD()
h.connect_uri(uri)
if h.get_size() != size or h.is_read_only() or not h.can_fua() or not h.can_flush():
    sys.exit(f"unexpected export: size {h.get_size()}, read-only {h.is_read_only()}, fua {h.can_fua()}, flush {h.can_flush()}")
print("CONNECTED", flush=True)

next_id = 0
reason = "?"
try:
    while True:
        while h.aio_in_flight() < depth:
            next_id += 1
            if rng.random() < 0.1:
                out.write(f"F {next_id}\n")
                h.aio_flush(completion=flush_done(next_id))
                continue
            offset, length = random_extent()
            fua = rng.random() < 0.25
            key = rng.getrandbits(64)
            buffer = nbd.Buffer.from_bytearray(pattern(offset, length, key))
            buffers[next_id] = buffer
            out.write(f"W {next_id} {offset} {length} {int(fua)} {key}\n")
            h.aio_pwrite(buffer, offset, completion=write_done(next_id), flags=nbd.CMD_FLAG_FUA if fua else 0)
        h.poll(-1)
except nbd.Error as e:
    reason = f"nbd error: {e}"
finally:
    out.write(f"END {reason}\n")
    out.flush()
