// Emulated Raspberry Pi Picos: RP2040s from the rp2040js package running the official
// MicroPython firmware. One Pico wired to the built-in rig as boards/rpi_pico/wiring.csv says
// (the rp2040js target), or the two Picos of a bench, the DUT and the rig Pico, wired to each
// other (the bench target).
//
//   node pico.mjs CONFIG_JSON        (started by a supervisor, which passes fd 3)
//
// fd 3 is a socket to the supervisor carrying frames: one type byte, a 32-bit little-endian
// length, the payload. Each board's USB CDC byte stream has a frame type of its own ("D" the
// DUT's, "E" the rig Pico's: to the chip, what the host sent; from it, what the chip sent). "J"
// frames are JSON: requests with an id and their replies, and events ({"event": ...}) from the
// emulator. When fd 3 closes the emulator saves and exits.
//
// Two chips run on one timeline, anchored to the wall clock: in steps of at most QUANTUM_NS
// while either core is busy, so that a pin one drives reaches the other within that; when both
// sleep, straight to the earlier one's next alarm or PIO instruction.
//
// rp2040js 1.4.1 lacks seven things the firmware needs; each is made good here (see "Workarounds"):
// flash erase/program, the watchdog's one-shot reset, a USB host that waits for data before it
// answers an OUT transfer, the UART's TX interrupt, the BOOTSEL button's pad, SPI answers that
// wait for room in the RX FIFO (DMA transfers of 32 bytes or more), and a PIO that runs on the
// chip's clock, with its dividers and delays.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

// stdout and stderr are the log; keep rp2040js's console output off anything else.
for (const name of ['log', 'info', 'debug']) {
  console[name] = (...args) => console.error(...args);
}

const config = JSON.parse(process.argv[2]);
const rp2040js = await import(pathToFileURL(config.rp2040js).href);
const { bootromB1 } = await import(pathToFileURL(config.bootrom).href);
const { RP2040, USBCDC, BasePeripheral } = rp2040js;

const FLASH_BYTES = 2 * 1024 * 1024;
const XIP_BASE = 0x10000000;
const NS_PER_MS = 1e6;
// The clock of the chips never runs ahead of the wall clock; when busy code makes it fall behind
// by more than this, it stays behind rather than racing to catch up.
const MAX_LAG_NS = 50 * NS_PER_MS;
// Two chips run in steps of this while either is busy: the pump reads MOTOR_FEEDBACK 20 µs after
// its step edge, and the rig Pico's answer must have crossed the wire by then.
const QUANTUM_NS = 5000;
const SLICE_MS = 20;
const FLASH_SAVE_IDLE_MS = 100;
const FLASH_SAVE_MAX_MS = 1000;
const STATE_SAVE_MS = 250;
// What chip.runTo returns when the chip's clock reached the time it was asked to run to, and
// when it stopped early, asked to, having driven a wire to another chip.
const REACHED = -1;
const POSTED = -2;
// How far one busy chip runs ahead of the others, asleep, in one go (they catch up after).
const RUN_AHEAD_NS = 1 * NS_PER_MS;

const TRACE = !!process.env.PUMPSIM_RP2_TRACE;
const MULTI = config.boards.length > 1;
let boards = [];                  // the chips this emulator runs (the DUT first)
const boardOfFrame = new Map();   // USB CDC frame type -> board
let wiring = null;                // the wires between them (the bench)

function log(msg) {
  process.stderr.write(`${new Date().toISOString()} ${msg}\n`);
}

// rp2040js logs every access to a peripheral it does not model: keep one line per message kind.
const logged = new Map();
const logger = {
  debug() {},
  info() {},
  warn(component, message) { once(component, message); },
  error(component, message) { once(component, message); },
};
function once(component, message) {
  const key = `${component}: ${message.replace(/0x[0-9a-f]+/g, '#')}`;
  const count = (logged.get(key) || 0) + 1;
  logged.set(key, count);
  if (count === 1 || count === 1000) log(`[${component}] ${message}${count > 1 ? ' (x1000)' : ''}`);
}

function writeAtomic(file, data) {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

// The timeline every chip runs on, in ns since the emulator started, anchored to the wall clock.
const timeline = {
  wallAnchor: performance.now(),
  nsAnchor: 0,
  ns: 0,
  allowed(nowWall) {
    return this.nsAnchor + (nowWall - this.wallAnchor) * NS_PER_MS;
  },
  // Busy code ran slower than real time: the clock stays behind, as far as it fell.
  keepUp(nowWall) {
    const lag = this.allowed(nowWall) - this.ns;
    if (lag > MAX_LAG_NS) this.nsAnchor -= lag - MAX_LAG_NS;
  },
};

// -- a board: its chip, its flash, its FRAM, its USB link, and the built-in rig's counters ----
//
// spec.rig: 'drive' (the built-in rig on this board's pins: it counts the strokes and answers
// them on MOTOR_FEEDBACK, sets the ADC, hears the buzzer), 'observe' (the same counts and tones,
// taken from the pins another chip drives), or absent (no built-in rig: the rig Pico).

class Board {
  constructor(spec) {
    this.spec = spec;
    this.name = spec.name;
    this.frameType = spec.frame;
    this.pins = spec.pins || {};
    this.rigMode = spec.rig || null;
    this.flashPath = path.join(spec.dir, 'flash.bin');
    this.statePath = path.join(spec.dir, 'rig.json');
    const saved = this.rigMode ? this.loadState() : {};
    this.rig = {
      pulses: saved.pulses || 0,       // strokes the motor made (rising edges that turned it)
      edges: saved.edges || 0,         // every rising edge on MOTOR_STEP
      clock_ms: saved.clock_ms || 0,   // the rig's time: emulated time the chip has been powered
      power_cuts: saved.power_cuts || 0,
      resets: saved.resets || 0,
      stall: saved.stall || 'off',     // off, on, intermittent, next
      stall_left: saved.stall_left || 0,
      battery_mv: saved.battery_mv || spec.battery_mv,
      flash_erases: saved.flash_erases || 0,
      flash_programs: saved.flash_programs || 0,
      flash_erased_bytes: saved.flash_erased_bytes || 0,
      flash_programmed_bytes: saved.flash_programmed_bytes || 0,
      fram_writes: saved.fram_writes || 0,
      fram_written_bytes: saved.fram_written_bytes || 0,
      last_pulse_ms: saved.last_pulse_ms ?? null,    // rig time of the newest stroke the motor made
      last_failed_ms: saved.last_failed_ms ?? null,  // rig time of the newest attempt that did not turn
    };
    // The rig's trace: the rig time in ms of every stroke counted, as int64 little-endian in
    // trace.bin, appended before rig.json is written (the emu target's format).
    this.tracePath = path.join(spec.dir, 'trace.bin');
    this.strokesMs = this.rigMode ? this.loadTrace() : [];
    this.boots = 0;
    this.attempts = 0;
    this.stateDirty = !!this.rigMode;
    this.lastStateSave = 0;
    this.flash = this.loadFlash();
    this.flashDirtySince = null;
    this.fram = spec.fram ? new Fram(this, spec.fram.bytes) : null;
    this.chip = null;
    this.outChunks = [];
    this.inbox = [];  // pin changes from another chip, in time order: {t, apply}
  }

  clockMs() {
    return this.chip ? this.chip.clockMs() : this.rig.clock_ms;
  }

  loadState() {
    try {
      return JSON.parse(fs.readFileSync(this.statePath, 'utf8'));
    } catch {
      return {};
    }
  }

  // The strokes' times saved, never more than rig.json's count (a time saved after the count was
  // is of a stroke not counted).
  loadTrace() {
    let data;
    try {
      data = fs.readFileSync(this.tracePath);
    } catch {
      data = Buffer.alloc(0);
    }
    const n = Math.min(Math.floor(data.length / 8), this.rig.pulses);
    const strokes = [];
    for (let i = 0; i < n; i++) strokes.push(Number(data.readBigInt64LE(i * 8)));
    if (n * 8 !== data.length) fs.writeFileSync(this.tracePath, data.subarray(0, n * 8));
    this.traceSaved = n;
    return strokes;
  }

  saveTrace() {
    const tail = this.strokesMs.slice(this.traceSaved);
    if (!tail.length) return;
    const buf = Buffer.alloc(tail.length * 8);
    tail.forEach((ms, i) => buf.writeBigInt64LE(BigInt(ms), i * 8));
    fs.appendFileSync(this.tracePath, buf);
    this.traceSaved = this.strokesMs.length;
  }

  saveState() {
    if (this.rigMode) {
      if (this.chip) this.rig.clock_ms = this.chip.clockMs();
      this.saveTrace();
      writeAtomic(this.statePath, JSON.stringify(this.rig));
    }
    this.stateDirty = false;
    this.lastStateSave = performance.now();
  }

  freshFlash() {
    // A brand-new chip: the uf2's blocks, erased (0xFF) flash elsewhere.
    const image = new Uint8Array(FLASH_BYTES).fill(0xff);
    const uf2 = fs.readFileSync(this.spec.firmware);
    let blocks = 0;
    for (let at = 0; at + 512 <= uf2.length; at += 512) {
      const magic0 = uf2.readUInt32LE(at);
      const magic1 = uf2.readUInt32LE(at + 4);
      const magicEnd = uf2.readUInt32LE(at + 508);
      if (magic0 !== 0x0a324655 || magic1 !== 0x9e5d5157 || magicEnd !== 0x0ab16f30) continue;
      const flags = uf2.readUInt32LE(at + 8);
      if (flags & 1) continue; // not for the main flash
      const target = uf2.readUInt32LE(at + 12);
      const size = uf2.readUInt32LE(at + 16);
      const offset = target - XIP_BASE;
      if (offset < 0 || offset + size > FLASH_BYTES || size > 476) {
        throw new Error(`uf2 block ${blocks} targets 0x${target.toString(16)}, outside the 2 MiB flash`);
      }
      image.set(uf2.subarray(at + 32, at + 32 + size), offset);
      blocks++;
    }
    if (!blocks) throw new Error(`${this.spec.firmware} holds no uf2 blocks for the RP2040's flash`);
    this.log(`new flash from the uf2: ${blocks} blocks`);
    return image;
  }

  loadFlash() {
    try {
      const kept = fs.readFileSync(this.flashPath);
      if (kept.length === FLASH_BYTES) {
        this.log('flash from flash.bin');
        return new Uint8Array(kept.buffer, kept.byteOffset, kept.length);
      }
      this.log(`flash.bin is ${kept.length} bytes, not ${FLASH_BYTES}: starting from the uf2`);
    } catch (err) {
      if (err.code !== 'ENOENT') throw err;
    }
    const image = this.freshFlash();
    writeAtomic(this.flashPath, image);
    return image;
  }

  saveFlash() {
    if (this.chip) this.flash = this.chip.rp.flash.slice(0, FLASH_BYTES);
    writeAtomic(this.flashPath, this.flash);
    this.flashDirtySince = null;
  }

  log(msg) {
    log(MULTI ? `${this.name}: ${msg}` : msg);
  }

  send(obj) {
    send(MULTI ? { board: this.name, ...obj } : obj);
  }

  flushSerial() {
    if (this.outChunks.length) {
      const data = Buffer.concat(this.outChunks);
      this.outChunks = [];
      if (TRACE) this.log(`trace out ${data.length} at ${this.clockMs()}`);
      link.write(frame(this.frameType, data));
    }
  }

  // Power applied (or the chip reset) at timeline time atNs: a new chip from the flash kept.
  powerUp(cause, carried, atNs = timeline.ns) {
    this.powerDown();
    this.boots++;
    this.chip = new Chip(this, this.flash, cause, carried, atNs);
    this.log(`boot ${this.boots}: ${cause}`);
    this.send({ event: 'boot', boot: this.boots, cause });
    wiring.attach(this, atNs);
  }

  // The chip stops (power gone, or RUN held low); its flash is kept.
  powerDown() {
    const { chip } = this;
    if (!chip) return;
    this.rig.clock_ms = chip.clockMs();
    if (chip.tone) chip.tone.stop();
    this.flash = chip.rp.flash.slice(0, FLASH_BYTES);
    this.chip = null;
    this.stateDirty = true;
  }

  // One motor attempt, the built-in rig deciding it; true when the motor turned (the same rules
  // as the virtual board's rig).
  step() {
    this.attempts++;
    const { rig } = this;
    let moved;
    if (rig.stall === 'next') {
      rig.stall_left--;
      if (rig.stall_left <= 0) {
        rig.stall = 'off';
        rig.stall_left = 0;
      }
      moved = false;
    } else {
      moved = rig.stall === 'off' || (rig.stall === 'intermittent' && this.attempts % 2 === 0);
    }
    this.stroke(moved);
    return moved;
  }

  stroke(moved) {
    const { rig } = this;
    rig.edges++;
    if (moved) {
      rig.pulses++;
      rig.last_pulse_ms = this.chip.clockMs();
      this.strokesMs.push(rig.last_pulse_ms);
    } else {
      rig.last_failed_ms = this.chip.clockMs();
    }
    this.stateDirty = true;
  }

  // Runs the chip to timeline time targetNs, the pin changes that reach it on the way applied at
  // their times. REACHED, or what chip.runTo returned when it stopped before.
  runTo(targetNs) {
    for (;;) {
      const next = this.inbox.length ? this.inbox[0].t : Infinity;
      if (next > targetNs) break;
      if (this.running()) {
        const ran = this.chip.runTo(next - this.chip.originNs, Infinity, Infinity);
        if (ran !== REACHED) return ran;
      }
      this.inbox.shift().apply(next);
    }
    if (!this.running()) return REACHED;
    return this.chip.runTo(targetNs - this.chip.originNs, Infinity, Infinity);
  }

  // Timeline time of the chip's next alarm, PIO instruction or pin change from outside.
  nextEventNs() {
    const next = this.inbox.length ? this.inbox[0].t : Infinity;
    return this.running() ? Math.min(next, this.chip.originNs + this.chip.nextEventNs()) : next;
  }

  running() {
    return this.chip !== null && this.chip.reboot === null;
  }
}

// -- the FRAM beside the chip (boards/rpi_pico: an MB85RS1MT on SPI, pins FRAM_*) --------------
//
// A chip of its own: it keeps its bytes across every reset and power cut of the RP2040. Each
// byte of a WRITE is stored as it arrives, as on the part; the file is written at the end of each
// transaction. While the rig has a power cut armed at a write, that write's bytes are held back
// until its chip select rises, then a random prefix of them reaches the memory and the power goes:
// the same tear the virtual board's FRAM makes (boards/emu/rom/_fram.py).

const SSPDR = 0x008; // the SPI data register
const FRAM_ID = [0x04, 0x7f, 0x27, 0x03]; // Fujitsu, continuation, MB85RS1MT
class Fram {
  constructor(board, bytes) {
    this.board = board;
    this.size = bytes;
    const framPath = path.join(board.spec.dir, 'fram.bin');
    let kept = null;
    try { kept = fs.readFileSync(framPath); } catch (err) { if (err.code !== 'ENOENT') throw err; }
    this.mem = new Uint8Array(bytes);
    if (kept) this.mem.set(kept.subarray(0, bytes));
    else fs.writeFileSync(framPath, this.mem);
    this.fd = fs.openSync(framPath, 'r+');
    this.wel = false;
    this.selected = false;
    this.armedAt = 0;    // a power cut at the armedAt-th WRITE from now (0: none)
    this.onTear = null;  // called when an armed write has torn
  }

  select(low) {
    if (low) {
      this.selected = true;
      this.pos = 0;
      this.op = 0;
      this.addr = 0;
      this.start = -1;
      this.held = [];
      return;
    }
    if (!this.selected) return;
    this.selected = false;
    if (this.op === 0x06) this.wel = true;
    else if (this.op === 0x04) this.wel = false;
    else if (this.op === 0x02 || this.op === 0x01) {
      if (this.op === 0x02 && this.start >= 0) this.finishWrite();
      this.wel = false;
    }
  }

  transfer(mosi) {
    if (!this.selected) return 0;
    const p = this.pos++;
    if (p === 0) {
      this.op = mosi;
      return 0;
    }
    const op = this.op;
    if (op === 0x9f) return FRAM_ID[p - 1] || 0;
    if (op === 0x05) return this.wel ? 0x02 : 0;
    if (op !== 0x03 && op !== 0x02) return 0;
    if (p <= 3) {
      this.addr = ((this.addr << 8) | mosi) >>> 0;
      if (p === 3) this.addr %= this.size;
      return 0;
    }
    const at = (this.addr + p - 4) % this.size;
    if (op === 0x03) return this.mem[at];
    if (!this.wel) return 0;
    if (this.start < 0) {
      this.start = p;
      this.board.rig.fram_writes++;
      if (this.armedAt) this.armedAt--;
      this.holding = this.armedAt === 0 && this.onTear !== null;
    }
    this.board.rig.fram_written_bytes++;
    if (this.holding) this.held.push(mosi);
    else this.put(at, mosi);
    return 0;
  }

  put(at, value) {
    this.mem[at] = value;
    if (this.dirtyFrom === undefined) this.dirtyFrom = at;
    this.dirtyTo = at;
  }

  finishWrite() {
    if (this.holding) {
      const held = this.held;
      const reach = Math.floor(Math.random() * held.length);
      for (let i = 0; i < reach; i++) this.put((this.addr + i) % this.size, held[i]);
      this.persist();
      this.holding = false;
      const tear = this.onTear;
      this.onTear = null;
      tear(reach, held.length);
      return;
    }
    this.persist();
  }

  persist() {
    if (this.dirtyFrom === undefined) return;
    const from = this.dirtyFrom;
    const to = this.dirtyTo;
    if (to >= from) fs.writeSync(this.fd, this.mem, from, to - from + 1, from);
    else fs.writeSync(this.fd, this.mem, 0, this.size, 0); // wrapped past the end
    this.dirtyFrom = undefined;
  }

  flip(flips) {
    for (const [at, bit] of flips) this.put(at % this.size, this.mem[at % this.size] ^ (1 << bit));
    this.persist();
  }
}

// -- the link to the supervisor ---------------------------------------------------------------

const link = new net.Socket({ fd: config.fd, readable: true, writable: true });
let linkBuf = Buffer.alloc(0);

function frame(type, payload) {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeUInt32LE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

function send(obj) {
  flushSerial();
  link.write(frame('J', Buffer.from(JSON.stringify(obj))));
}

function flushSerial() {
  for (const board of boards) board.flushSerial();
}

link.on('data', (data) => {
  linkBuf = linkBuf.length ? Buffer.concat([linkBuf, data]) : data;
  while (linkBuf.length >= 5) {
    const size = linkBuf.readUInt32LE(1);
    if (linkBuf.length < 5 + size) break;
    const type = String.fromCharCode(linkBuf[0]);
    const payload = linkBuf.subarray(5, 5 + size);
    linkBuf = linkBuf.subarray(5 + size);
    const board = boardOfFrame.get(type);
    if (board) {
      // A board without power, or held in reset, has no USB device: what the host sent is lost.
      if (TRACE) board.log(`trace in ${payload.length} at ${board.clockMs()}`);
      if (board.chip) board.chip.toChip(payload);
    } else if (type === 'J') {
      request(JSON.parse(payload.toString()));
    }
  }
  wake();
});

let quitting = false;
function quit(why) {
  if (quitting) return;
  quitting = true;
  log(`exiting: ${why}`);
  try {
    for (const board of boards) {
      board.saveFlash();
      board.saveState();
    }
  } finally {
    flushSerial();
    link.end(() => process.exit(0));
    setTimeout(() => process.exit(0), 500).unref();
  }
}
link.on('end', () => quit('the supervisor closed the link'));
link.on('error', (err) => quit(`link error: ${err.message}`));
process.on('SIGTERM', () => quit('SIGTERM'));
process.on('SIGINT', () => quit('SIGINT'));
process.on('SIGHUP', () => quit('SIGHUP'));
// Belt and braces: a parent that vanished without closing the socket.
const parentPid = process.ppid;
setInterval(() => {
  if (process.ppid !== parentPid) quit('the supervisor is gone');
}, 1000).unref();

// -- the chip ---------------------------------------------------------------------------------

// CHIP_RESET of VREG_AND_CHIP_RESET, which rp2040js leaves unmodelled: what the firmware reads
// as the cause of its reset.
const HAD_POR = 1 << 8;
const HAD_RUN = 1 << 16;
class ChipReset extends BasePeripheral {
  constructor(rp, name, chipReset) {
    super(rp, name);
    this.chipReset = chipReset;
    this.vreg = 0x000010b1; // reset value: enabled, 1.10 V, regulation ok
    this.bod = 0x91;
  }
  readUint32(offset) {
    switch (offset) {
      case 0x0: return this.vreg;
      case 0x4: return this.bod;
      case 0x8: return this.chipReset;
      default: return 0;
    }
  }
  writeUint32(offset, value) {
    if (offset === 0x0) this.vreg = value;
    else if (offset === 0x4) this.bod = value;
  }
}

function romFunction(bootrom, code) {
  const half = (addr) => (bootrom[addr >>> 2] >>> ((addr & 2) * 8)) & 0xffff;
  const tag = code.charCodeAt(0) | (code.charCodeAt(1) << 8);
  for (let entry = half(0x14); half(entry) !== 0; entry += 4) {
    if (half(entry) === tag) return half(entry + 2);
  }
  throw new Error(`the boot ROM has no function '${code}'`);
}

function patchBkpt(bootrom, addr, imm) {
  const at = addr & ~1;
  const word = bootrom[at >>> 2];
  const shift = (at & 2) * 8;
  bootrom[at >>> 2] = ((word & ~(0xffff << shift)) | ((0xbe00 | imm) << shift)) >>> 0;
}

// rp2040js's WaitType.Pin: a state machine waiting for a GPIO level.
const WAIT_PIN = 1;

// A state machine's clock divider: 16 integer bits (0 means 65536) and 8 fraction bits.
function smDivider(sm) {
  return (sm.clockDivInt || 65536) + sm.clockDivFrac / 256;
}

class Chip {
  // cause: 'pwron' (power applied), 'run' (the RUN pin: rig reset), 'wdt' (watchdog timer),
  // 'force' (the watchdog triggered by software: machine.reset()).
  constructor(board, image, cause, carried = {}, originNs = 0) {
    const rp = new RP2040();
    this.board = board;
    this.originNs = originNs;  // the timeline's time when this chip's clock was 0
    this.rp = rp;
    this.clock = rp.clock;
    rp.logger = logger;
    rp.loadBootrom(bootromB1);
    rp.flash.set(image);
    this.cause = cause;
    this.baseNs = board.rig.clock_ms * NS_PER_MS;
    this.reboot = null;
    this.pendingOut = null;
    this.inQueue = [];
    this.inBytes = 0;
    this.connected = false;
    this.stopOnPost = false;  // runTo returns POSTED once a wire it drives has changed
    this.posted = false;
    rp.peripherals[0x40064] = new ChipReset(rp, 'VREG_AND_CHIP_RESET_BASE',
      cause === 'pwron' ? HAD_POR : cause === 'run' ? HAD_RUN : 0);
    this.workarounds(carried);
    this.wire();
    rp.core.PC = XIP_BASE; // boot2 first, as the boot ROM would after finding it
  }

  clockMs() {
    return Math.floor((this.baseNs + this.clock.nanos) / NS_PER_MS);
  }

  workarounds(carried) {
    const { rp, board } = this;
    const { rig } = board;
    // 1. Flash erase and program: the SSI is a stub, so the boot ROM's flash_range_erase ('RE')
    //    and flash_range_program ('RP') become breakpoints that do the work on the flash array.
    const erase = romFunction(rp.bootrom, 'RE') & ~1;
    const program = romFunction(rp.bootrom, 'RP') & ~1;
    patchBkpt(rp.bootrom, erase, 1);
    patchBkpt(rp.bootrom, program, 2);
    rp.onBreak = () => {
      const { core } = rp;
      const at = (core.PC - 2) >>> 0;
      const [r0, r1, r2] = core.registers;
      if (at === erase) {
        const start = r0 >>> 0;
        const end = Math.min(start + (r1 >>> 0), FLASH_BYTES);
        rp.flash.fill(0xff, start, end);
        rig.flash_erases++;
        rig.flash_erased_bytes += end - start;
      } else if (at === program) {
        const start = r0 >>> 0;
        const count = Math.min(r2 >>> 0, FLASH_BYTES - start);
        for (let i = 0; i < count; i++) rp.flash[start + i] &= rp.readUint8(r1 + i);
        rig.flash_programs++;
        rig.flash_programmed_bytes += count;
      } else {
        board.log(`breakpoint at 0x${at.toString(16)}: halting the chip`);
        this.reboot = 'halt';
        return;
      }
      if (board.flashDirtySince === null) board.flashDirtySince = performance.now();
      board.stateDirty = true;
      core.PC = core.LR & ~1;
    };
    // 2. The watchdog re-fires with zero delay once it has fired: stop its timer and reset the
    //    chip, keeping what survives a watchdog reset (its reason and scratch registers).
    const wd = rp.peripherals[0x40058];
    if (carried.watchdogReason) {
      wd.reason = carried.watchdogReason;
      wd.scratchData.set(carried.scratch);
    }
    wd.onWatchdogTrigger = () => {
      wd.timer.enable = false;
      wd.alarm.enable = false;
      if (!this.reboot) this.reboot = wd.reason & 1 ? 'wdt' : 'force';
      this.carried = { watchdogReason: wd.reason, scratch: wd.scratchData.slice() };
    };
    // 3. The USB host answers every armed OUT endpoint at once, with nothing: hold the transfer
    //    until the host has data (see wire()).
    // 4. The UART raises its TX interrupt on every register access: raise it on a data write,
    //    and let ICR clear it.
    for (const uart of rp.uart) {
      const write = uart.writeUint32.bind(uart);
      uart.checkInterrupts = () => {
        rp.setInterrupt(uart.irq, !!(uart.interruptStatus & uart.interruptMask));
      };
      uart.writeUint32 = (offset, value) => {
        write(offset, value);
        if (offset === 0) {
          uart.interruptStatus |= 1 << 5;
          uart.checkInterrupts();
        }
      };
    }
    // 5. BOOTSEL reads as pressed: the QSPI_SS pad has its input disabled and low. Released
    //    means high.
    const ss = rp.qspi[1];
    ss.padValue |= 0x40;
    ss.setInputValue(true);
    // 7. The PIO steps on node's timers, 1000 instructions a tick whatever the chip's clock, and
    //    ignores the state machines' clock dividers and the instructions' delays: it runs here
    //    instead, on the chip's own cycles (pio(), below).
    //    Only the enabled machines are visited, listed anew at every write to a PIO block.
    this.pioEnabled = [];  // [block, machine] of each enabled state machine
    for (const block of rp.pio) {
      block.run = () => {};
      for (const sm of block.machines) {
        sm.credit = 0;     // state-machine cycles owed, from the system cycles that went by
        sm.delayLeft = 0;  // cycles of the last instruction's delay still to wait
      }
      const write = block.writeUint32.bind(block);
      block.writeUint32 = (offset, value) => {
        write(offset, value);
        this.pioEnabled = [];
        for (const b of rp.pio) for (const sm of b.machines) if (sm.enabled) this.pioEnabled.push([b, sm]);
      };
    }
  }

  wire() {
    const { rp, board } = this;
    const { pins, fram } = board;
    const { spec } = board;
    // USB CDC: the host end of the cable.
    const cdc = new USBCDC(rp.usbCtrl);
    this.cdc = cdc;
    cdc.onDeviceConnected = () => {
      this.connected = true;
      board.log(`boot ${board.boots}: USB CDC connected at ${(this.clock.nanos / NS_PER_MS).toFixed(1)} ms`);
      board.send({ event: 'usb', boot: board.boots, chip_ms: Math.floor(this.clock.nanos / NS_PER_MS) });
    };
    cdc.onSerialData = (buffer) => {
      board.outChunks.push(Buffer.from(buffer));
    };
    rp.usbCtrl.onEndpointRead = (endpoint, size) => {
      if (endpoint === cdc.outEndpoint) {
        this.pendingOut = { endpoint, size };
        this.deliver();
      }
    };
    if (board.rigMode === 'drive') {
      // MOTOR_STEP: every rising edge is a motor attempt; MOTOR_FEEDBACK says whether it turned.
      const feedback = rp.gpio[pins.feedback];
      feedback.setInputValue(false);
      rp.gpio[pins.step].addListener((value, old) => {
        if (value === 1 && old !== 1) feedback.setInputValue(board.step());
      });
      // BATTERY_ADC: the rig's DAC through the divider.
      this.setBattery();
    } else if (board.rigMode === 'observe') {
      // The same counts from pins another chip answers: an attempt turned the motor when
      // MOTOR_FEEDBACK is high as the step ends, which is when the pump reads it.
      const feedback = rp.gpio[pins.feedback];
      rp.gpio[pins.step].addListener((value, old) => {
        if (value === 0 && old === 1) board.stroke(feedback.rawInputValue);
      });
    }
    if (board.rigMode) {
      // BUZZER: the rig's microphone measures the PWM on the pin, edge by edge.
      this.tone = new ToneMeter(this);
      rp.gpio[pins.buzzer].addListener((value, old) => this.tone.edge(value, old));
    }
    // The FRAM on SPI: its chip select, and a byte back for every byte out.
    if (fram) {
      const spi = rp.spi[spec.fram.spi];
      // 6. A byte's transfer completed the moment it was sent, so a DMA transfer of 32 bytes or
      //    more (MicroPython's machine.SPI uses DMA from 32) sent every byte before the RX
      //    channel ran once: the RX FIFO overflowed and the RX channel waited forever. Here, as
      //    on silicon, a byte takes its time on the wire: its bits at the SPI clock the firmware
      //    set (clk_peri / (CPSDVSR x (1 + SCR))). The RX channel keeps up, and what a record
      //    costs in CPU time grows with its length.
      let sending = 0;
      const shifted = rp.clock.createAlarm(() => spi.completeTransmit(sending));
      spi.onTransmit = (value) => {
        sending = fram.transfer(value);
        board.stateDirty = true;
        const bits = (spi.control0 & 0xf) + 1;
        const divisor = Math.max(2, spi.clockDivisor) * (1 + ((spi.control0 >> 8) & 0xff));
        shifted.schedule(bits * divisor * 1e9 / rp.clkPeri);
      };
      fram.select(false);
      rp.gpio[spec.fram.cs].addListener((value) => fram.select(value === 0));
    }
  }

  setBattery() {
    const { pins, rig, spec } = this.board;
    const channel = pins.battery_adc - 26;
    const pinMv = rig.battery_mv / spec.battery_divider;
    const value = Math.round(pinMv * 4095 / spec.battery_adc_full_scale_mv);
    this.rp.adc.channelValues[channel] = Math.max(0, Math.min(4095, value));
  }

  toChip(data) {
    if (!data.length) return;
    this.inQueue.push(Buffer.from(data));
    this.inBytes += data.length;
  }

  deliver() {
    if (!this.pendingOut || !this.inBytes) return false;
    const { endpoint, size } = this.pendingOut;
    const take = Math.min(size, this.inBytes);
    const out = new Uint8Array(take);
    let filled = 0;
    while (filled < take) {
      const head = this.inQueue[0];
      const n = Math.min(head.length, take - filled);
      out.set(head.subarray(0, n), filled);
      filled += n;
      if (n === head.length) this.inQueue.shift();
      else this.inQueue[0] = head.subarray(n);
    }
    this.inBytes -= take;
    if (TRACE) this.board.log(`trace deliver ${take} at ${this.clockMs()}`);
    this.pendingOut = null;
    this.rp.usbCtrl.endpointReadDone(endpoint, out);
    return true;
  }

  // The state machines of both PIO blocks for `cycles` system clock cycles, each at its own
  // divided clock, an instruction's delay taking its cycles. A machine that waits stays waiting
  // until what it waits for changes: a pin does so through the GPIO (rp2040js checks the wait at
  // once, so such a machine is not stepped at all), a FIFO or an IRQ through the core, between
  // two of its instructions.
  pio(cycles) {
    const enabled = this.pioEnabled;
    if (!enabled.length) return;
    let stepped = null;
    for (const [block, sm] of enabled) {
      if (sm.waiting && sm.waitType === WAIT_PIN) continue;
      let credit = sm.credit + cycles / smDivider(sm);
      while (credit >= 1) {
        if (sm.delayLeft > 0) {
          const n = Math.min(sm.delayLeft, Math.floor(credit));
          sm.delayLeft -= n;
          credit -= n;
          continue;
        }
        const before = sm.cycles;
        sm.step();
        stepped = block;
        credit -= 1;
        if (sm.waiting) {
          credit -= Math.floor(credit);
          break;
        }
        sm.delayLeft = Math.max(0, sm.cycles - before - 1);
      }
      sm.credit = credit;
    }
    if (stepped) for (const block of this.rp.pio) block.checkChangedPins();
  }

  // System cycles until the next PIO instruction of a machine that is not waiting (Infinity:
  // none), so that an idle core's clock skips no further than that.
  pioNextCycles() {
    let next = Infinity;
    for (const [, sm] of this.pioEnabled) {
      if (sm.waiting) continue;
      next = Math.min(next, Math.max(1, Math.ceil((sm.delayLeft + 1 - sm.credit) * smDivider(sm))));
    }
    return next;
  }

  // Chip clock of the next alarm or PIO instruction (Infinity: none).
  nextEventNs() {
    const { clock } = this;
    const alarm = clock.nextAlarm ? clock.nextAlarm.nanos : Infinity;
    return Math.min(alarm, clock.nanos + this.pioNextCycles() * 1e9 / this.rp.clkSys);
  }

  // Runs the chip until its clock reaches targetNs (REACHED), or until the wall clock passes
  // endWall while it is busy (null: run again at once). Idle time is skipped to the next alarm
  // or PIO instruction, never past the wall clock (allowedNs: the chip clock it may reach, or
  // null: the timeline's allowance now); an idle chip that caught up with it returns the ms to
  // sleep until its next event (Infinity: until input). 0 when the chip is to reboot.
  runTo(targetNs, allowedNs, endWall) {
    const { rp, clock } = this;
    const { core } = rp;
    // Input that came while the chip ran goes in now; while it sleeps, once its clock caught up.
    if (!core.waiting) this.deliver();
    for (;;) {
      for (let i = 0; i < 20000; i++) {
        if (clock.nanos >= targetNs) return REACHED;
        if (core.waiting) {
          const allowed = allowedNs ?? timeline.allowed(performance.now()) - this.originNs;
          const next = Math.min(this.nextEventNs(), targetNs);
          const from = clock.nanos;
          if (next <= allowed) {
            clock.tick(Math.max(0, next - clock.nanos));
          } else {
            if (allowed > clock.nanos) clock.tick(allowed - clock.nanos);
            this.pio((clock.nanos - from) * rp.clkSys / 1e9);
            if (this.deliver()) continue;
            return next === Infinity ? Infinity : (next - allowed) / NS_PER_MS;
          }
          this.pio((clock.nanos - from) * rp.clkSys / 1e9);
        } else {
          if (TRACE) {
            stats.instructions++;
            this.board.instructions = (this.board.instructions || 0) + 1;
          }
          const cycles = core.executeInstruction();
          clock.tick(cycles * 1e9 / rp.clkSys);
          this.pio(cycles);
        }
        if (this.reboot) return 0;
        if (this.posted && this.stopOnPost) return POSTED;
      }
      if (performance.now() > endWall) return null;
    }
  }
}

// The microphone: frequency and duty of the buzzer pin from its edges. A tone starts at its
// first rising edge and ends when no edge has come for three periods. A frequency counts once two
// periods in a row agree (the period in which the firmware changed the setting is neither).
class ToneMeter {
  constructor(owner) {
    this.owner = owner;
    this.silence = owner.clock.createAlarm(() => this.stop());
    this.board = owner.board;
    this.reset();
  }

  reset() {
    this.lastRise = null;
    this.lastFall = null;
    this.freq = 0;       // what is sounding (0: silence)
    this.candidate = 0;  // a frequency seen once, not yet confirmed
    this.candidateNs = 0;
    this.startNs = 0;
    this.periodNs = 0;
  }

  ms(nanos) {
    return Math.floor((this.owner.baseNs + nanos) / NS_PER_MS);
  }

  edge(value, old) {
    const now = this.owner.clock.nanos;
    if (value === 1 && old !== 1) {
      if (this.lastRise === null) {
        this.startNs = now;
      } else {
        const period = now - this.lastRise;
        const freq = Math.round(1e9 / period);
        const high = this.lastFall !== null && this.lastFall > this.lastRise ? this.lastFall - this.lastRise : period;
        if (freq === this.freq) {
          this.candidate = 0;
        } else if (freq === this.candidate) {
          const duty = Math.round(65535 * high / period);
          this.board.send({ event: 'pwm', t_ms: this.ms(this.candidateNs), freq, duty });
          this.freq = freq;
          this.candidate = 0;
        } else {
          this.candidate = freq;
          this.candidateNs = this.freq ? this.lastRise : this.startNs;
        }
        this.periodNs = period;
      }
      this.lastRise = now;
      this.silence.schedule(this.periodNs ? 3 * this.periodNs : 50 * NS_PER_MS);
    } else if (value === 0 && old === 1) {
      this.lastFall = now;
    }
  }

  stop() {
    if (this.freq) {
      const end = this.lastFall !== null && this.lastFall > this.lastRise ? this.lastFall : this.lastRise + this.periodNs;
      this.board.send({ event: 'pwm', t_ms: this.ms(end), freq: 0, duty: 0 });
    }
    this.silence.cancel();
    this.reset();
  }
}

// -- the wires between two chips (the bench) --------------------------------------------------
//
// config.wiring, from the boards' wiring.csv and pins.csv (bench.py), each with from/from_pin
// (the board and pin that drive it) and to:
//   wire    a digital line to the to_pin of the other chip;
//   power   the load switch in the other board's VSYS: high powers it (floating: off, as the
//           switch's enable is pulled down);
//   run     the other board's RUN pin, open drain: driven low holds its chip in reset;
//   rc_adc  a PWM pin through an RC filter (tau_ms) and a 1:divider divider into ADC channel
//           `channel` of the other chip: its slice's duty is read, not its edges (100 kHz edges
//           would cost 200,000 alarms an emulated second), and the voltage follows it with the
//           filter's time constant.

// A pin's level as the other end of its wire sees it: driven high, or pulled up.
function level(state) {
  return state === 1 || state === 3; // GPIOPinState High, InputPullUp
}

class Dac {
  constructor(spec) {
    this.spec = spec;
    this.tauNs = spec.tau_ms * NS_PER_MS;
    this.fromMv = 0;   // the filter's output at t0
    this.toMv = 0;     // what it tends to: the PWM's mean
    this.t0 = 0;
  }

  mv(atNs) {
    const k = Math.exp(-Math.max(0, atNs - this.t0) / this.tauNs);
    return this.toMv + (this.fromMv - this.toMv) * k;
  }

  set(duty, atNs) {
    this.fromMv = this.mv(atNs);
    this.t0 = atNs;
    this.toMv = duty * this.spec.high_mv;
  }

  code(atNs) {
    const pinMv = this.mv(atNs) / this.spec.divider;
    return Math.max(0, Math.min(4095, Math.round(pinMv * 4095 / this.spec.adc_full_scale_mv)));
  }
}

// The mean of a PWM output from its slice's registers: enable, compare, wrap, inversion.
function pwmDuty(channel, b) {
  if (!(channel.csr & 1)) return 0;
  const cc = b ? channel.cc >>> 16 : channel.cc & 0xffff;
  let duty = Math.min(cc, channel.top + 1) / (channel.top + 1);
  if (channel.csr & (b ? 1 << 3 : 1 << 2)) duty = 1 - duty;
  return duty;
}

class Wiring {
  constructor(specs) {
    this.specs = specs || [];
    this.dacs = new Map(this.specs.filter((w) => w.kind === 'rc_adc').map((w) => [w, new Dac(w)]));
  }

  // A chip that just came up at atNs: what it drives goes out on its wires, what it reads is what
  // the other ends drive now.
  attach(board, atNs) {
    const { chip } = board;
    const now = () => chip.originNs + chip.clock.nanos;
    for (const w of this.specs) {
      if (w.from === board.name) {
        const to = boardNamed(w.to);
        if (w.kind === 'rc_adc') {
          const dac = this.dacs.get(w);
          const slice = (w.from_pin >> 1) & 7;
          const b = w.from_pin & 1;
          const channel = chip.rp.pwm.channels[slice];
          channel.updateEnable = () => { channel.timer.enable = false; };
          channel.timer.enable = false;
          const write = channel.writeRegister.bind(channel);
          channel.writeRegister = (offset, value) => {
            write(offset, value);
            dac.set(pwmDuty(channel, b), now());
          };
          dac.set(0, atNs);
          continue;
        }
        const pin = chip.rp.gpio[w.from_pin];
        pin.addListener((value) => this.post(w, to, value, now()));
        this.post(w, to, pin.value, atNs);
      } else if (w.to === board.name) {
        const from = boardNamed(w.from);
        if (w.kind === 'wire') {
          const driven = from.running() ? from.chip.rp.gpio[w.from_pin].value : 0;
          chip.rp.gpio[w.to_pin].setInputValue(level(driven));
        } else if (w.kind === 'rc_adc') {
          const dac = this.dacs.get(w);
          const { adc } = chip.rp;
          const read = adc.onADCRead;
          adc.onADCRead = (channel) => {
            if (channel === w.channel) adc.channelValues[channel] = dac.code(now());
            read(channel);
          };
        }
      }
    }
  }

  // A change on a wire reaches the other board at its time stamp, in order.
  post(w, to, state, t) {
    const from = boardNamed(w.from);
    if (from.chip) from.chip.posted = true;
    if (TRACE) log(`trace wire ${w.kind} ${w.from}:${w.from_pin} -> ${w.to}:${w.to_pin ?? ''} ${state} at ${t}`);
    const item = { t, apply: (at) => this.apply(w, to, state, at) };
    let i = to.inbox.length;
    while (i > 0 && to.inbox[i - 1].t > t) i--;
    to.inbox.splice(i, 0, item);
  }

  apply(w, to, state, atNs) {
    if (w.kind === 'wire') {
      if (to.running()) to.chip.rp.gpio[w.to_pin].setInputValue(level(state));
    } else if (w.kind === 'power') {
      to.supply(level(state), to.runLow, atNs);
    } else if (w.kind === 'run') {
      to.supply(to.powered, state === 0, atNs);
    }
  }
}

// What the board's supply and RUN pin now are: its chip starts when both let it, and stops
// (its flash kept) when either goes.
Board.prototype.supply = function supply(powered, runLow, atNs) {
  const was = this.powered && !this.runLow;
  const cause = this.powered && powered ? 'run' : 'pwron';
  this.powered = powered;
  this.runLow = runLow;
  const on = powered && !runLow;
  if (on && !was) this.powerUp(cause, undefined, atNs);
  else if (!on && was) {
    this.powerDown();
    this.log(powered ? 'held in reset' : 'power off');
    this.send({ event: 'off', why: powered ? 'run' : 'power' });
  }
};

function boardNamed(name) {
  const board = boards.find((b) => b.name === name);
  if (!board) throw new Error(`no board ${name}`);
  return board;
}

// -- main loop --------------------------------------------------------------------------------

let sleepTimer = null;

function wake() {
  if (sleepTimer !== null) {
    clearTimeout(sleepTimer);
    sleepTimer = null;
  }
  setImmediate(loop);
}

// One chip for a slice of wall time: as fast as its code runs, idle time skipped.
function runOne(board) {
  if (!board.running()) return Infinity;
  const { chip } = board;
  const wait = chip.runTo(Infinity, null, performance.now() + SLICE_MS);
  timeline.ns = chip.originNs + chip.clock.nanos;
  if (wait === null) timeline.keepUp(performance.now());
  return wait;
}

// Every chip on the one timeline for a slice of wall time: in quanta while two cores are busy;
// while one is, it runs ahead to the others' next event, or until it drives a wire to them, and
// they catch up to it (what it drove reaches them at its time; their answer reaches it in time,
// as it stopped there); when all sleep, to the earliest next event, never past the wall clock.
function runLockstep() {
  const end = performance.now() + SLICE_MS;
  for (;;) {
    let busy = 0;
    let runner = null;
    for (const board of boards) {
      if (!board.running()) continue;
      board.chip.deliver();
      if (!board.chip.rp.core.waiting) {
        busy++;
        runner = board;
      }
    }
    if (busy === 1 && boards.every((b) => !b.inbox.length)) {
      const others = boards.filter((b) => b !== runner);
      const { chip } = runner;
      const horizon = Math.min(timeline.ns + RUN_AHEAD_NS, ...others.map((b) => b.nextEventNs()));
      chip.posted = false;
      chip.stopOnPost = true;
      const ran = chip.runTo(horizon - chip.originNs, Infinity, end);
      chip.stopOnPost = false;
      if (ran === 0) return 0;
      const t = Math.max(timeline.ns, chip.originNs + chip.clock.nanos);
      for (const board of others) {
        // (a nanosecond on: an event due at t falls due in the chip's own arithmetic too)
        if (board.runTo(t + 1) !== REACHED) return 0;
      }
      timeline.ns = t;
      if (ran === null) {
        timeline.keepUp(performance.now());
        return null;
      }
      continue;
    }
    let target;
    let sleepMs = null;
    if (busy) {
      target = timeline.ns + QUANTUM_NS;
    } else {
      const next = Math.min(...boards.map((b) => b.nextEventNs()));
      const allowed = timeline.allowed(performance.now());
      if (next <= allowed) {
        // A nanosecond past it: the chips' clocks count from their own power-up, and the alarm
        // must fall due in the chip's arithmetic too, not a rounding error short of it.
        target = Math.max(next + 1, timeline.ns);
      } else {
        target = Math.max(allowed, timeline.ns);
        sleepMs = next === Infinity ? Infinity : (next - target) / NS_PER_MS;
      }
    }
    for (const board of boards) {
      if (board.runTo(target) !== REACHED) return 0; // a chip is to reboot
    }
    timeline.ns = target;
    if (sleepMs !== null && !boards.some((b) => b.running() && !b.chip.rp.core.waiting)) return sleepMs;
    if (performance.now() > end) {
      timeline.keepUp(performance.now());
      return null;
    }
  }
}

const stats = { instructions: 0, wall: performance.now(), emu: 0 };
function loop() {
  if (quitting) return;
  sleepTimer = null;
  const wait = boards.length === 1 ? runOne(boards[0]) : runLockstep();
  if (TRACE && performance.now() - stats.wall > 1000) {
    const w = performance.now();
    const emu = timeline.ns / NS_PER_MS;
    log(`trace ${(stats.instructions / (w - stats.wall) / 1000).toFixed(2)} M instr/s, chips ${(emu - stats.emu).toFixed(0)} ms in ${(w - stats.wall).toFixed(0)} ms`);
    for (const b of boards) {
      const c = b.chip;
      log(`trace ${b.name}: ${b.instructions || 0} instructions, ${c ? `waiting=${c.rp.core.waiting} at=${(c.originNs + c.clock.nanos).toFixed(0)} next=${b.nextEventNs()} reboot=${c.reboot}` : 'off'} inbox=${b.inbox.length} timeline=${timeline.ns} allowed=${timeline.allowed(w).toFixed(0)} wait=${wait}`);
    }
    stats.instructions = 0; stats.wall = w; stats.emu = emu;
    for (const b of boards) b.instructions = 0;
  }
  flushSerial();
  let rebooted = false;
  for (const board of boards) {
    const { chip } = board;
    if (!chip || !chip.reboot || chip.halted) continue;
    if (chip.reboot === 'halt') {
      chip.halted = true;
      board.send({ event: 'halted' });
      continue;
    }
    board.powerUp(chip.reboot, chip.carried, chip.originNs + chip.clock.nanos);
    board.saveFlash();
    board.saveState();
    rebooted = true;
  }
  if (rebooted) {
    setImmediate(loop);
    return;
  }
  const now = performance.now();
  let ms = wait === null ? 0 : wait;
  for (const board of boards) {
    const since = board.flashDirtySince;
    if (since !== null && (wait !== null || now - since > FLASH_SAVE_MAX_MS)) {
      if (now - since > FLASH_SAVE_IDLE_MS || now - since > FLASH_SAVE_MAX_MS) board.saveFlash();
    }
    if (board.stateDirty && now - board.lastStateSave > STATE_SAVE_MS) board.saveState();
    // Wake at the next alarm, or for a pending save, or when the supervisor sends something.
    if (board.flashDirtySince !== null) ms = Math.min(ms, FLASH_SAVE_IDLE_MS);
    if (board.stateDirty) ms = Math.min(ms, STATE_SAVE_MS);
  }
  if (wait === null) setImmediate(loop);
  else sleepTimer = setTimeout(loop, Math.max(0, Math.min(ms, 1000)));
}

function state(board) {
  const { chip } = board;
  return { ...board.rig, clock_ms: board.clockMs(), boots: board.boots, connected: chip ? chip.connected : false,
           cause: chip ? chip.cause : 'off' };
}

function request(msg) {
  const reply = (obj) => send({ id: msg.id, ...obj });
  const board = msg.board ? boards.find((b) => b.name === msg.board) : boards[0];
  if (!board) {
    reply({ error: `no board ${msg.board} here` });
    return;
  }
  const { rig, fram } = board;
  switch (msg.cmd) {
    case 'state':
      reply(state(board));
      break;
    case 'stall':
      rig.stall = msg.mode;
      rig.stall_left = msg.mode === 'next' ? msg.n : 0;
      board.saveState();
      reply(state(board));
      break;
    case 'battery':
      if (msg.mv) {
        rig.battery_mv = msg.mv;
        if (board.running() && board.rigMode === 'drive') board.chip.setBattery();
        board.saveState();
      }
      reply(state(board));
      break;
    case 'power-cycle':
      if (msg.at_write) {
        if (!fram) {
          reply({ error: 'power-cycle N: this board has no FRAM to cut a write of' });
          break;
        }
        fram.armedAt = msg.at_write;
        fram.onTear = (reach, of) => {
          board.log(`power cut during FRAM write: ${reach} of ${of} bytes reach the memory`);
          rig.power_cuts++;
          board.chip.reboot = 'pwron';
          board.stateDirty = true;
        };
        reply({ ...state(board), armed: msg.at_write });
        break;
      }
      rig.power_cuts++;
      board.powerUp('pwron');
      board.saveFlash();
      board.saveState();
      reply(state(board));
      break;
    case 'reset':
      rig.resets++;
      board.powerUp('run');
      board.saveFlash();
      board.saveState();
      reply(state(board));
      break;
    case 'trace': {
      const from = msg.from || 0;
      reply({ from, strokes_ms: board.strokesMs.slice(from, from + msg.count), total: board.strokesMs.length,
              untimed: rig.pulses - board.strokesMs.length });
      break;
    }
    case 'fram-flip':
      if (!fram) {
        reply({ error: 'this board has no FRAM' });
        break;
      }
      fram.flip(msg.flips);
      reply(state(board));
      break;
    case 'quit':
      reply({ quitting: true });
      quit('asked to');
      break;
    default:
      reply({ error: `unknown emulator request ${msg.cmd}` });
  }
}

boards = config.boards.map((spec) => new Board(spec));
for (const board of boards) boardOfFrame.set(board.frameType, board);
wiring = new Wiring(config.wiring);
for (const board of boards) {
  board.powered = !board.spec.powered_by;
  board.runLow = false;
}
for (const board of boards) {
  if (board.powered) board.powerUp('pwron');
  board.saveState();
}
send({ event: 'ready', flash_bytes: FLASH_BYTES });
setImmediate(loop);
