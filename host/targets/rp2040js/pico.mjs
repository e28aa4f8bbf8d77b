// The emulated Raspberry Pi Pico: an RP2040 from the rp2040js package running the official
// MicroPython firmware, wired to the rig as boards/rpi_pico/wiring.csv says.
//
//   node pico.mjs CONFIG_JSON        (started by supervisor.py, which passes fd 3)
//
// fd 3 is a socket to the supervisor carrying frames: one type byte, a 32-bit little-endian
// length, the payload. "D" frames are the USB CDC byte stream (to the chip: what the host sent;
// from it: what the chip sent). "J" frames are JSON: requests with an id and their replies, and
// events ({"event": ...}) from the emulator. When fd 3 closes the emulator saves and exits.
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
// The clock of the chip never runs ahead of the wall clock; when busy code makes it fall behind
// by more than this, it stays behind rather than racing to catch up.
const MAX_LAG_NS = 50 * NS_PER_MS;
const SLICE_MS = 20;
const FLASH_SAVE_IDLE_MS = 100;
const FLASH_SAVE_MAX_MS = 1000;
const STATE_SAVE_MS = 250;

const dir = config.dir;
const flashPath = path.join(dir, 'flash.bin');
const statePath = path.join(dir, 'rig.json');
const pins = config.pins;
const TRACE = !!process.env.PUMPSIM_RP2_TRACE;

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

// -- persistent state: the flash and the rig's own counters -----------------------------------

function writeAtomic(file, data) {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

function freshFlash() {
  // A brand-new chip: the uf2's blocks, erased (0xFF) flash elsewhere.
  const image = new Uint8Array(FLASH_BYTES).fill(0xff);
  const uf2 = fs.readFileSync(config.firmware);
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
  if (!blocks) throw new Error(`${config.firmware} holds no uf2 blocks for the RP2040's flash`);
  log(`new flash from the uf2: ${blocks} blocks`);
  return image;
}

function loadFlash() {
  try {
    const kept = fs.readFileSync(flashPath);
    if (kept.length === FLASH_BYTES) {
      log('flash from flash.bin');
      return new Uint8Array(kept.buffer, kept.byteOffset, kept.length);
    }
    log(`flash.bin is ${kept.length} bytes, not ${FLASH_BYTES}: starting from the uf2`);
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
  const image = freshFlash();
  writeAtomic(flashPath, image);
  return image;
}

function loadState() {
  try {
    return JSON.parse(fs.readFileSync(statePath, 'utf8'));
  } catch {
    return {};
  }
}

const saved = loadState();
const rig = {
  pulses: saved.pulses || 0,       // strokes the motor made (rising edges that turned it)
  edges: saved.edges || 0,         // every rising edge on MOTOR_STEP
  clock_ms: saved.clock_ms || 0,   // the rig's time: emulated time the chip has been powered
  power_cuts: saved.power_cuts || 0,
  resets: saved.resets || 0,
  stall: saved.stall || 'off',     // off, on, intermittent, next
  stall_left: saved.stall_left || 0,
  battery_mv: saved.battery_mv || config.battery_mv,
  flash_erases: saved.flash_erases || 0,
  flash_programs: saved.flash_programs || 0,
  flash_erased_bytes: saved.flash_erased_bytes || 0,
  flash_programmed_bytes: saved.flash_programmed_bytes || 0,
  fram_writes: saved.fram_writes || 0,
  fram_written_bytes: saved.fram_written_bytes || 0,
  last_pulse_ms: saved.last_pulse_ms ?? null,    // rig time of the newest stroke the motor made
  last_failed_ms: saved.last_failed_ms ?? null,  // rig time of the newest attempt that did not turn
};
let boots = 0;
let attempts = 0;
let stateDirty = true;
let lastStateSave = 0;

function saveState() {
  if (chip) rig.clock_ms = chip.clockMs();
  writeAtomic(statePath, JSON.stringify(rig));
  stateDirty = false;
  lastStateSave = performance.now();
}

let flash = loadFlash();
let flashDirtySince = null;

// -- the FRAM beside the chip (boards/rpi_pico: an MB85RS1MT on SPI, pins FRAM_*) --------------
//
// A chip of its own: it keeps its bytes across every reset and power cut of the RP2040. Each
// byte of a WRITE is stored as it arrives, as on the part; the file is written at the end of each
// transaction. While the rig has a power cut armed at a write, that write's bytes are held back
// until its chip select rises, then a random prefix of them reaches the memory and the power goes:
// the same tear the virtual board's FRAM makes (boards/emu/rom/_fram.py).

const SSPDR = 0x008; // the SPI data register
const FRAM_ID = [0x04, 0x7f, 0x27, 0x03]; // Fujitsu, continuation, MB85RS1MT
const framPath = path.join(dir, 'fram.bin');

class Fram {
  constructor(bytes) {
    this.size = bytes;
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
      rig.fram_writes++;
      if (this.armedAt) this.armedAt--;
      this.holding = this.armedAt === 0 && this.onTear !== null;
    }
    rig.fram_written_bytes++;
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

const fram = config.fram ? new Fram(config.fram.bytes) : null;

function saveFlash() {
  if (chip) flash = chip.rp.flash.slice(0, FLASH_BYTES);
  writeAtomic(flashPath, flash);
  flashDirtySince = null;
}

// -- the link to the supervisor ---------------------------------------------------------------

const link = new net.Socket({ fd: config.fd, readable: true, writable: true });
let linkBuf = Buffer.alloc(0);
let outChunks = [];

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
  if (outChunks.length) {
    const data = Buffer.concat(outChunks);
    outChunks = [];
    if (TRACE) log(`trace out ${data.length} at ${chip.clockMs()}`);
    link.write(frame('D', data));
  }
}

link.on('data', (data) => {
  linkBuf = linkBuf.length ? Buffer.concat([linkBuf, data]) : data;
  while (linkBuf.length >= 5) {
    const size = linkBuf.readUInt32LE(1);
    if (linkBuf.length < 5 + size) break;
    const type = String.fromCharCode(linkBuf[0]);
    const payload = linkBuf.subarray(5, 5 + size);
    linkBuf = linkBuf.subarray(5 + size);
    if (type === 'D') {
      if (TRACE) log(`trace in ${payload.length} at ${chip.clockMs()} waiting=${chip.rp.core.waiting} pending=${!!chip.pendingOut}`);
      chip.toChip(payload);
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
    saveFlash();
    saveState();
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

// A state machine's clock divider: 16 integer bits (0 means 65536) and 8 fraction bits.
function smDivider(sm) {
  return (sm.clockDivInt || 65536) + sm.clockDivFrac / 256;
}

class Chip {
  // cause: 'pwron' (power applied), 'run' (the RUN pin: rig reset), 'wdt' (watchdog timer),
  // 'force' (the watchdog triggered by software: machine.reset()).
  constructor(image, cause, carried = {}) {
    const rp = new RP2040();
    this.rp = rp;
    this.clock = rp.clock;
    rp.logger = logger;
    rp.loadBootrom(bootromB1);
    rp.flash.set(image);
    this.cause = cause;
    this.baseNs = rig.clock_ms * NS_PER_MS;
    this.reboot = null;
    this.pendingOut = null;
    this.inQueue = [];
    this.inBytes = 0;
    this.connected = false;
    this.wallAnchor = performance.now();
    this.nsAnchor = 0;
    this.timer = null;
    this.sleeping = false;
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
    const { rp } = this;
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
        log(`breakpoint at 0x${at.toString(16)}: halting the chip`);
        this.reboot = 'halt';
        return;
      }
      if (flashDirtySince === null) flashDirtySince = performance.now();
      stateDirty = true;
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
    for (const block of rp.pio) {
      block.run = () => {};
      for (const sm of block.machines) {
        sm.credit = 0;     // state-machine cycles owed, from the system cycles that went by
        sm.delayLeft = 0;  // cycles of the last instruction's delay still to wait
      }
    }
  }

  wire() {
    const { rp } = this;
    // USB CDC: the host end of the cable.
    const cdc = new USBCDC(rp.usbCtrl);
    this.cdc = cdc;
    cdc.onDeviceConnected = () => {
      this.connected = true;
      log(`boot ${boots}: USB CDC connected at ${(this.clock.nanos / NS_PER_MS).toFixed(1)} ms`);
      send({ event: 'usb', boot: boots, chip_ms: Math.floor(this.clock.nanos / NS_PER_MS) });
    };
    cdc.onSerialData = (buffer) => {
      outChunks.push(Buffer.from(buffer));
    };
    rp.usbCtrl.onEndpointRead = (endpoint, size) => {
      if (endpoint === cdc.outEndpoint) {
        this.pendingOut = { endpoint, size };
        this.deliver();
      }
    };
    // MOTOR_STEP: every rising edge is a motor attempt; MOTOR_FEEDBACK says whether it turned.
    const feedback = rp.gpio[pins.feedback];
    feedback.setInputValue(false);
    rp.gpio[pins.step].addListener((value, old) => {
      if (value === 1 && old !== 1) feedback.setInputValue(step());
    });
    // BATTERY_ADC: the rig's DAC through the divider.
    this.setBattery();
    // BUZZER: the rig's microphone measures the PWM on the pin, edge by edge.
    this.tone = new ToneMeter(this);
    rp.gpio[pins.buzzer].addListener((value, old) => this.tone.edge(value, old));
    // The FRAM on SPI: its chip select, and a byte back for every byte out.
    if (fram) {
      const spi = rp.spi[config.fram.spi];
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
        stateDirty = true;
        const bits = (spi.control0 & 0xf) + 1;
        const divisor = Math.max(2, spi.clockDivisor) * (1 + ((spi.control0 >> 8) & 0xff));
        shifted.schedule(bits * divisor * 1e9 / rp.clkPeri);
      };
      fram.select(false);
      rp.gpio[config.fram.cs].addListener((value) => fram.select(value === 0));
    }
  }

  setBattery() {
    const channel = pins.battery_adc - 26;
    const pinMv = rig.battery_mv / config.battery_divider;
    const value = Math.round(pinMv * 4095 / config.battery_adc_full_scale_mv);
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
    if (TRACE) log(`trace deliver ${take} at ${this.clockMs()}`);
    this.pendingOut = null;
    this.rp.usbCtrl.endpointReadDone(endpoint, out);
    return true;
  }

  // The state machines of both PIO blocks for `cycles` system clock cycles, each at its own
  // divided clock, an instruction's delay taking its cycles. A machine that waits stays waiting
  // until what it waits for changes: a pin does so through the GPIO (rp2040js checks the wait at
  // once), a FIFO or an IRQ through the core, between two of its instructions.
  pio(cycles) {
    for (const block of this.rp.pio) {
      if (block.stopped) continue;
      for (const sm of block.machines) {
        if (!sm.enabled) continue;
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
          credit -= 1;
          if (sm.waiting) {
            credit -= Math.floor(credit);
            break;
          }
          sm.delayLeft = Math.max(0, sm.cycles - before - 1);
        }
        sm.credit = credit;
      }
      block.checkChangedPins();
    }
  }

  // System cycles until the next PIO instruction of a machine that is not waiting (Infinity:
  // none), so that an idle core's clock skips no further than that.
  pioNextCycles() {
    let next = Infinity;
    for (const block of this.rp.pio) {
      if (block.stopped) continue;
      for (const sm of block.machines) {
        if (!sm.enabled || sm.waiting) continue;
        next = Math.min(next, Math.max(1, Math.ceil((sm.delayLeft + 1 - sm.credit) * smDivider(sm))));
      }
    }
    return next;
  }

  allowedNs(nowWall) {
    return this.nsAnchor + (nowWall - this.wallAnchor) * NS_PER_MS;
  }

  // Runs the chip for a slice of wall time; returns ms to sleep before the next slice
  // (Infinity: until input), or null to run again at once.
  run() {
    const { rp, clock } = this;
    const { core } = rp;
    const end = performance.now() + SLICE_MS;
    // Input that came while the chip ran goes in now; while it sleeps, once its clock caught up.
    if (!core.waiting) this.deliver();
    for (;;) {
      for (let i = 0; i < 20000; i++) {
        if (core.waiting) {
          // Idle: skip the clock to the next alarm or PIO instruction, never past the wall clock.
          const allowed = this.allowedNs(performance.now());
          const alarm = clock.nextAlarm ? clock.nextAlarm.nanos : Infinity;
          const pioCycles = this.pioNextCycles();
          const next = Math.min(alarm, clock.nanos + pioCycles * 1e9 / rp.clkSys);
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
          if (TRACE) stats.instructions++;
          const cycles = core.executeInstruction();
          clock.tick(cycles * 1e9 / rp.clkSys);
          this.pio(cycles);
        }
        if (this.reboot) return 0;
      }
      const now = performance.now();
      if (now > end) {
        // Busy code ran slower than real time: the chip's clock stays behind, as far as it fell.
        const lag = this.allowedNs(now) - clock.nanos;
        if (lag > MAX_LAG_NS) this.nsAnchor -= lag - MAX_LAG_NS;
        return null;
      }
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
          send({ event: 'pwm', t_ms: this.ms(this.candidateNs), freq, duty });
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
      send({ event: 'pwm', t_ms: this.ms(end), freq: 0, duty: 0 });
    }
    this.silence.cancel();
    this.reset();
  }
}

function step() {
  // One motor attempt; true when the motor turned (the same rules as the virtual board's rig).
  attempts++;
  rig.edges++;
  let moved;
  if (rig.stall === 'next') {
    rig.stall_left--;
    if (rig.stall_left <= 0) {
      rig.stall = 'off';
      rig.stall_left = 0;
    }
    moved = false;
  } else {
    moved = rig.stall === 'off' || (rig.stall === 'intermittent' && attempts % 2 === 0);
  }
  if (moved) {
    rig.pulses++;
    rig.last_pulse_ms = chip.clockMs();
  } else {
    rig.last_failed_ms = chip.clockMs();
  }
  stateDirty = true;
  return moved;
}

// -- main loop --------------------------------------------------------------------------------

let chip = null;
let sleepTimer = null;

function powerUp(cause, carried) {
  if (chip) {
    rig.clock_ms = chip.clockMs();
    if (chip.tone) chip.tone.stop();
    flash = chip.rp.flash.slice(0, FLASH_BYTES);
  }
  boots++;
  chip = new Chip(flash, cause, carried);
  log(`boot ${boots}: ${cause}`);
  send({ event: 'boot', boot: boots, cause });
}

function wake() {
  if (sleepTimer !== null) {
    clearTimeout(sleepTimer);
    sleepTimer = null;
  }
  setImmediate(loop);
}

const stats = { instructions: 0, wall: performance.now(), emu: 0 };
function loop() {
  if (quitting) return;
  sleepTimer = null;
  const wait = chip.run();
  if (TRACE && performance.now() - stats.wall > 1000) {
    const w = performance.now();
    log(`trace ${(stats.instructions / (w - stats.wall) / 1000).toFixed(2)} M instr/s, chip ${chip.clockMs() - stats.emu} ms in ${(w - stats.wall).toFixed(0)} ms`);
    stats.instructions = 0; stats.wall = w; stats.emu = chip.clockMs();
  }
  flushSerial();
  if (chip.reboot) {
    const cause = chip.reboot;
    if (cause === 'halt') {
      send({ event: 'halted' });
      return;
    }
    powerUp(cause, chip.carried);
    saveFlash();
    saveState();
    setImmediate(loop);
    return;
  }
  const now = performance.now();
  if (flashDirtySince !== null && (wait !== null || now - flashDirtySince > FLASH_SAVE_MAX_MS)) {
    if (now - flashDirtySince > FLASH_SAVE_IDLE_MS || now - flashDirtySince > FLASH_SAVE_MAX_MS) {
      saveFlash();
    }
  }
  if (stateDirty && now - lastStateSave > STATE_SAVE_MS) saveState();
  if (wait === null) {
    setImmediate(loop);
  } else {
    // Wake at the next alarm, or for a pending save, or when the supervisor sends something.
    let ms = wait;
    if (flashDirtySince !== null) ms = Math.min(ms, FLASH_SAVE_IDLE_MS);
    if (stateDirty) ms = Math.min(ms, STATE_SAVE_MS);
    sleepTimer = setTimeout(loop, Math.max(0, Math.min(ms, 1000)));
  }
}

function state() {
  return { ...rig, clock_ms: chip.clockMs(), boots, connected: chip.connected, cause: chip.cause };
}

function request(msg) {
  const reply = (obj) => send({ id: msg.id, ...obj });
  switch (msg.cmd) {
    case 'state':
      reply(state());
      break;
    case 'stall':
      rig.stall = msg.mode;
      rig.stall_left = msg.mode === 'next' ? msg.n : 0;
      saveState();
      reply(state());
      break;
    case 'battery':
      if (msg.mv) {
        rig.battery_mv = msg.mv;
        chip.setBattery();
        saveState();
      }
      reply(state());
      break;
    case 'power-cycle':
      if (msg.at_write) {
        if (!fram) {
          reply({ error: 'power-cycle N: this board has no FRAM to cut a write of' });
          break;
        }
        fram.armedAt = msg.at_write;
        fram.onTear = (reach, of) => {
          log(`power cut during FRAM write: ${reach} of ${of} bytes reach the memory`);
          rig.power_cuts++;
          chip.reboot = 'pwron';
          stateDirty = true;
        };
        reply({ ...state(), armed: msg.at_write });
        break;
      }
      rig.power_cuts++;
      powerUp('pwron');
      saveFlash();
      saveState();
      reply(state());
      break;
    case 'reset':
      rig.resets++;
      powerUp('run');
      saveFlash();
      saveState();
      reply(state());
      break;
    case 'fram-flip':
      if (!fram) {
        reply({ error: 'this board has no FRAM' });
        break;
      }
      fram.flip(msg.flips);
      reply(state());
      break;
    case 'quit':
      reply({ quitting: true });
      quit('asked to');
      break;
    default:
      reply({ error: `unknown emulator request ${msg.cmd}` });
  }
}

powerUp('pwron');
saveState();
send({ event: 'ready', flash_bytes: FLASH_BYTES });
setImmediate(loop);
