"""The soak's rude client: connects to an NBD server and drops the connection at a random point, in a loop.

Usage: soak_dropper.py SOCKET_PATH SECONDS REGION_OFFSET REGION_LENGTH

One connection at a time, each ending one of these ways (raw sockets, so the cut is exactly where we say):
  mid-handshake:   before the greeting, part-way through it, or part-way through an NBD_OPT_GO
  after handshake: right after GO succeeded (no NBD_CMD_DISC), or a polite write, read-back and DISC
  mid-request:     part of a request header, a WRITE with part of its payload, or READs whose replies
                   are never read
Writes stay inside [REGION_OFFSET, REGION_OFFSET + REGION_LENGTH), which the soak keeps away from fio.
The polite connections check that what they wrote reads back; any failure there, or a handshake the server
refuses, is an error. Prints one summary line: "dropper: N connections (...) errors E" and exits 1 on errors.
"""
import os
import random
import socket
import struct
import sys
import time

NBDMAGIC = b"NBDMAGIC"
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
OPT_GO, REP_ACK, REP_INFO = 7, 1, 3
CMD_READ, CMD_WRITE, CMD_DISC = 0, 1, 2

path, seconds, region_offset, region_length = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random()
counts = {"mid-handshake": 0, "after-handshake": 0, "mid-request": 0}
errors = []


def recv_exactly(s, n):
    data = bytearray()
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"server closed the connection ({len(data)} of {n} bytes read)")
        data += chunk
    return bytes(data)


def go_option():
    data = struct.pack(">I", 0) + struct.pack(">H", 0)   # default export name, no info requests
    return struct.pack(">QII", IHAVEOPT, OPT_GO, len(data)) + data


def handshake(s):
    greeting = recv_exactly(s, 18)
    if greeting[:8] != NBDMAGIC or struct.unpack(">Q", greeting[8:16])[0] != IHAVEOPT:
        raise ConnectionError(f"not a newstyle greeting: {greeting!r}")
    s.sendall(struct.pack(">I", 3) + go_option())   # FIXED_NEWSTYLE | NO_ZEROES, then GO
    size = None
    while True:
        magic, option, reply, length = struct.unpack(">QIII", recv_exactly(s, 20))
        payload = recv_exactly(s, length)
        if magic != REPLY_MAGIC or option != OPT_GO:
            raise ConnectionError(f"bad option reply: magic {magic:#x}, option {option}")
        if reply == REP_INFO and struct.unpack(">H", payload[:2])[0] == 0:
            size = struct.unpack(">Q", payload[2:10])[0]
        elif reply == REP_ACK:
            return size
        elif reply & 0x80000000:
            raise ConnectionError(f"GO refused: reply type {reply:#x}")


def request(command, offset, length, cookie):
    return struct.pack(">IHHQQI", REQUEST_MAGIC, 0, command, cookie, offset, length)


def random_extent():
    length = rng.randint(1, 64 * 1024)
    return region_offset + rng.randrange(0, region_length - length + 1), length


def simple_reply(s, cookie, read_length=0):
    magic, error, got = struct.unpack(">IIQ", recv_exactly(s, 16))
    if magic != SIMPLE_REPLY_MAGIC or error != 0 or got != cookie:
        raise ConnectionError(f"bad reply: magic {magic:#x}, error {error}, cookie {got} (wanted {cookie})")
    return recv_exactly(s, read_length) if read_length else b""


def one_connection(s):
    way = rng.randrange(8)
    if way == 0:          # connect, then hang up at once
        return "mid-handshake"
    if way == 1:          # part of the greeting
        recv_exactly(s, rng.randrange(1, 18))
        return "mid-handshake"
    if way == 2:          # whole greeting, then part of flags + GO
        recv_exactly(s, 18)
        sent = struct.pack(">I", 3) + go_option()
        s.sendall(sent[:rng.randrange(1, len(sent))])
        return "mid-handshake"
    handshake(s)
    if way == 3:          # handshake done, no DISC
        return "after-handshake"
    if way == 4:          # part of a request header
        offset, length = random_extent()
        s.sendall(request(CMD_READ, offset, length, 1)[:rng.randrange(1, 28)])
        return "mid-request"
    if way == 5:          # a WRITE whose payload is cut short
        offset, length = random_extent()
        s.sendall(request(CMD_WRITE, offset, length, 2) + os.urandom(rng.randrange(0, length)))
        return "mid-request"
    if way == 6:          # READs whose replies nobody reads
        for cookie in range(rng.randint(1, 16)):
            offset, length = random_extent()
            s.sendall(request(CMD_READ, offset, length, cookie))
        return "mid-request"
    offset, length = random_extent()   # polite: write, read back, DISC
    data = os.urandom(length)
    s.sendall(request(CMD_WRITE, offset, length, 7) + data)
    simple_reply(s, 7)
    s.sendall(request(CMD_READ, offset, length, 8))
    if simple_reply(s, 8, length) != data:
        raise ConnectionError(f"read-back of [{offset}, {offset + length}) differs from what was written")
    s.sendall(request(CMD_DISC, 0, 0, 9))
    return "after-handshake"


deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    try:
        s.connect(path)
        counts[one_connection(s)] += 1
    except (OSError, ConnectionError) as e:
        errors.append(str(e))
    finally:
        s.close()
    time.sleep(rng.random() * 0.01)   # leave the CPU to fio on small machines

total = sum(counts.values())
print(f"dropper: {total} connections (mid-handshake {counts['mid-handshake']}, after handshake "
      f"{counts['after-handshake']}, mid-request {counts['mid-request']}) errors {len(errors)}", flush=True)
for e in errors[:10]:
    print(f"dropper error: {e}", file=sys.stderr)
sys.exit(1 if errors else 0)
