# The board's flash image read and written off the board, for the host (host/targets/emu/
# flashfs.py), by the same littlefs and block device the board mounts: run by the unix port as
#   micropython _image.py IMAGE BLOCKS < requests.json
# One JSON list of requests in, one JSON list of their results out; file contents in hex.
import json
import sys
import vfs
from binascii import hexlify, unhexlify

import _flash

_DIR = const(0x4000)


def _walk(fs, path, out):
    for entry in fs.ilistdir(path):
        name, kind = entry[0], entry[1]
        full = path.rstrip("/") + "/" + name
        if kind == _DIR:
            _walk(fs, full, out)
        else:
            with fs.open(full, "rb") as f:
                out[full] = hexlify(f.read()).decode()
    return out


def _exists(fs, path):
    try:
        return fs.stat(path)[0]
    except OSError:
        return None


def _makedirs(fs, path):
    parts = path.strip("/").split("/")[:-1]
    at = ""
    for part in parts:
        at += "/" + part
        if _exists(fs, at) is None:
            fs.mkdir(at)


def _remove(fs, path):
    kind = _exists(fs, path)
    if kind is None:
        return False
    if kind & _DIR:
        for entry in list(fs.ilistdir(path)):
            _remove(fs, path.rstrip("/") + "/" + entry[0])
        if path.strip("/"):
            fs.rmdir(path)
    else:
        fs.remove(path)
    return True


def _read(fs, path):
    try:
        with fs.open(path, "rb") as f:
            return hexlify(f.read()).decode()
    except OSError:
        return None


def _write(fs, path, data):
    _makedirs(fs, path)
    with fs.open(path, "wb") as f:
        f.write(unhexlify(data))
    return len(data) // 2


_OPS = {
    "files": lambda fs: _walk(fs, "/", {}),
    "read": _read,
    "write": _write,
    "remove": _remove,
    "df": lambda fs: list(fs.statvfs("/")),
}


def main():
    fs = _flash.filesystem(_flash.Flash(sys.argv[1], int(sys.argv[2])))
    results = []
    for request in json.loads(sys.stdin.read()):
        results.append(_OPS[request[0]](fs, *request[1:]))
    fs.umount()
    print(json.dumps(results))


main()
