"""Fuzzed and mutated request frames: well-formed ones with random seqs, verbs, payloads and MACs,
then bit flips, control bytes and truncations, or raw garbage."""

import zlib

VERBS = ["status", "refill", "program", "bolus", "config", "ack", "maintenance", "alarm-test", "warp"]
PAYLOADS = ['{}', '{"mode":"continuous","daily_dose_ug":900}', '{"mode":"stop"}', '{"patient":true}',
            '{"volume_ul":40000,"concentration_ug_per_ml":50}', '{"dose_ug":100,"minutes":1}']


def fuzzed_line(rng):
    body = (">%d %s %s" % (rng.randrange(2**32 - 1), rng.choice(VERBS), rng.choice(PAYLOADS))).encode()
    if rng.random() < 0.5:
        body += b" #" + b"%064x" % rng.getrandbits(256)
    line = bytearray(body + b"*%08x" % zlib.crc32(body))
    roll = rng.random()
    if roll < 0.3:
        return bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 120))).replace(b"\n", b"") + b"\n"
    for _ in range(rng.randrange(0 if roll < 0.5 else 1, 4)):
        if not line:
            break
        i = rng.randrange(len(line))
        op = rng.randrange(3)
        if op == 0:
            line[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            line[i:i] = bytes(rng.choice(b"\x00\x01\x02\x03\x04\x1a\x1b\x7f\xff<>*#{}") for _ in range(3))
        else:
            del line[i:]
    return bytes(line).replace(b"\n", b"") + b"\n"
