/**
 * `SharedMemory`, as Python's `multiprocessing.shared_memory`: named blocks
 * of bytes that any process of the program can create, attach to by name,
 * close and unlink.
 *
 * Workers share no address space, and a SharedArrayBuffer only reaches a
 * worker in a message, so a name could not be looked up synchronously in a
 * process started before the block existed. Instead, every block lives in one
 * growable SharedArrayBuffer, the arena, that the main process creates and
 * every process receives when it starts (`inheritable` in lifecycle.ts). The
 * arena's head is a table of records, changed under a short mutex, so
 * creating, attaching and unlinking work from any process at once. The arena
 * reserves 4 GiB of address space and grows as blocks are created.
 *
 * A record is one of three things: a block (its name, offset, size and open
 * handles), a free extent of the arena (offset and capacity), or the handles
 * one process holds on one block. Memory is separate from records: a new
 * block takes the smallest free extent that fits and splits off the rest,
 * a freed block merges with the free extents beside it, and a free extent at
 * the end of the arena goes back to it, so any pattern of create and unlink
 * runs for ever in the memory its live blocks need. The handles of a process
 * that ended without closing them (a terminated child) are closed for it, as
 * an OS unmaps a dead process's memory, so an unlinked block's memory comes
 * back even when a process that had it open was killed.
 *
 * @module
 */
import { adapter } from "./adapters/mod.ts";
import { holderEnded, holderPid, letGo, takeOver, tryHold } from "./holder.ts";
import { inheritable } from "./lifecycle.ts";
import { reduce, type Reduction, registerKind } from "./reduction.ts";
import { adopted, reviving } from "./revival.ts";

// The head's cells.
const MUTEX = 0; // a holder cell (holder.ts): the pid of the process changing the table, or 0
const ARENA_TOP = 1; // the top of the arena: where its used part ends (0: nothing used yet)
const HIGH = 2; // one past the last record in use: scans stop there
const BLOCKS = 3; // blocks that exist (live or unlinked but open)
const HEAD_INTS = 16;

/**
 * Records: a block, a free extent and a process's handles each take one, so
 * this many allow 2,048 blocks with a handle each and the free extents
 * between them (at most one per block, as neighbours merge).
 */
const RECORDS = 8192;
/** At most this many blocks exist at once, so that records never run out for the rest. */
const MAX_BLOCKS = 2048;
const RECORD_INTS = 32;
const NAME_BYTES = (RECORD_INTS - 6) * 4;
const DATA_START = (HEAD_INTS + RECORDS * RECORD_INTS) * 4;
const MAX_BYTES = 2 ** 32;
/** A free extent smaller than this stays part of the block that took it. */
const MIN_SPLIT = 64;

// A record's cells. STATE holds the kind in its low byte and flags above it.
const STATE = 0;
const OFFSET = 1; // a block or free extent: where its memory starts
const CAPACITY = 2; // a block or free extent: its memory's length
const SIZE = 3; // a block: its size as asked
const REFS = 4; // a block: open handles in every process
const NAME_LENGTH = 5;
const NAME = 6;
// A handles record: which block, whose, how many.
const BLOCK = 1;
const PID = 2;
const COUNT = 3;

const EMPTY = 0; // unused
const LIVE = 1; // a block, named, attachable
const UNLINKED = 2; // a block without its name, still open somewhere
const FREE = 3; // a free extent
const HANDLES = 4; // the handles of one process on one block
const RESERVED = 5; // a block being zeroed by the process creating it, not yet attachable
const KIND = 0xff;
/** A block that is unlinked when a process holding it ends: a manager caller's answer block. */
const SCOPED = 0x100;

const arena = inheritable<SharedArrayBuffer>("@mp/shared_memory", () => {
  if (adapter.parent() !== null) {
    throw new Error("SharedMemory: this worker was not started by Process, so it does not share the program's blocks");
  }
  return new SharedArrayBuffer(DATA_START, { maxByteLength: MAX_BYTES });
});

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const mayBlock = adapter.parent() !== null;

function table(): Int32Array {
  return new Int32Array(arena(), 0, DATA_START / 4);
}

/** Runs `change` with the table to itself: short sections, so waiters spin (the main thread) or nap (workers). */
function locked<T>(change: (meta: Int32Array) => T): T {
  const meta = table();
  const me = holderPid();
  for (;;) {
    const holder = tryHold(meta, MUTEX, me);
    // A process that ended mid-change leaves the table as it was; taking over beats a hang.
    if (holder === 0 || takeOver(meta, MUTEX, holder, me)) break;
    if (mayBlock) Atomics.wait(meta, MUTEX, holder, 1);
  }
  try {
    return change(meta);
  } finally {
    letGo(meta, MUTEX, me);
    Atomics.notify(meta, MUTEX);
  }
}

function at(record: number): number {
  return HEAD_INTS + record * RECORD_INTS;
}

function kind(meta: Int32Array, record: number): number {
  return meta[at(record) + STATE] & KIND;
}

function top(meta: Int32Array): number {
  return meta[ARENA_TOP] === 0 ? DATA_START : meta[ARENA_TOP] >>> 0;
}

/**
 * A record for a new use, marked with `state` at once (an unmarked one would
 * count as empty, and `dropRecord` would move HIGH below it), or -1 when all
 * are taken.
 */
function takeRecord(meta: Int32Array, state: number): number {
  for (let record = 0; record < RECORDS; record++) {
    if (kind(meta, record) !== EMPTY) continue;
    meta[at(record) + STATE] = state;
    if (record >= meta[HIGH]) meta[HIGH] = record + 1;
    return record;
  }
  return -1;
}

function dropRecord(meta: Int32Array, record: number): void {
  meta.fill(0, at(record), at(record) + RECORD_INTS);
  while (meta[HIGH] > 0 && kind(meta, meta[HIGH] - 1) === EMPTY) meta[HIGH]--;
}

function nameOf(meta: Int32Array, record: number): string {
  const base = at(record);
  return decoder.decode(new Uint8Array(meta.buffer, (base + NAME) * 4, meta[base + NAME_LENGTH]).slice());
}

/** The live block named `name` (as bytes, compared without decoding), or -1; `reserved`: one being made too. */
function find(meta: Int32Array, name: Uint8Array, reserved = false): number {
  const bytes = new Uint8Array(meta.buffer);
  for (let record = 0; record < meta[HIGH]; record++) {
    const base = at(record);
    const state = kind(meta, record);
    if (state !== LIVE && !(reserved && state === RESERVED)) continue;
    if (meta[base + NAME_LENGTH] !== name.length) continue;
    const start = (base + NAME) * 4;
    let i = 0;
    while (i < name.length && bytes[start + i] === name[i]) i++;
    if (i === name.length) return record;
  }
  return -1;
}

/** Gives a block's memory back: it merges with the free extents beside it, or with the unused end of the arena. */
function release(meta: Int32Array, record: number): void {
  const base = at(record);
  let offset = meta[base + OFFSET] >>> 0;
  let capacity = meta[base + CAPACITY] >>> 0;
  dropRecord(meta, record);
  meta[BLOCKS]--;
  for (let other = 0; other < meta[HIGH]; other++) {
    if (kind(meta, other) !== FREE) continue;
    const start = meta[at(other) + OFFSET] >>> 0;
    const length = meta[at(other) + CAPACITY] >>> 0;
    if (start + length === offset || offset + capacity === start) {
      offset = Math.min(offset, start);
      capacity += length;
      dropRecord(meta, other);
    }
  }
  if (offset + capacity === top(meta)) {
    meta[ARENA_TOP] = offset;
    return;
  }
  // A record is there: the merges above freed at least the block's own.
  const free = takeRecord(meta, FREE);
  meta[at(free) + OFFSET] = offset;
  meta[at(free) + CAPACITY] = capacity;
}

/** One handle fewer on the block in `record`: an unlinked block with none left gives its memory back. */
function unref(meta: Int32Array, record: number, count: number): void {
  const base = at(record);
  meta[base + REFS] -= count;
  if (meta[base + REFS] > 0) return;
  const state = meta[base + STATE];
  // RESERVED: its creator ended while zeroing it.
  if ((state & KIND) === UNLINKED || (state & KIND) === RESERVED || (state & SCOPED) !== 0) release(meta, record);
}

/** Closes the handles of processes that ended without closing them (terminated children). */
function reap(meta: Int32Array): void {
  for (let record = 0; record < meta[HIGH]; record++) {
    if (kind(meta, record) !== HANDLES) continue;
    const base = at(record);
    const pid = meta[base + PID];
    if (!holderEnded(pid)) continue;
    const block = meta[base + BLOCK];
    const count = meta[base + COUNT];
    dropRecord(meta, record);
    // A scoped block loses its name with its process.
    if ((meta[at(block) + STATE] & KIND) === LIVE && (meta[at(block) + STATE] & SCOPED) !== 0) {
      meta[at(block) + STATE] = UNLINKED | SCOPED;
    }
    unref(meta, block, count);
  }
}

/** Records one more handle of this process on the block in `record`. */
function addHandle(meta: Int32Array, block: number): void {
  const me = holderPid();
  meta[at(block) + REFS]++;
  for (let record = 0; record < meta[HIGH]; record++) {
    const base = at(record);
    if (kind(meta, record) === HANDLES && meta[base + BLOCK] === block && meta[base + PID] === me) {
      meta[base + COUNT]++;
      return;
    }
  }
  const record = takeRecord(meta, HANDLES);
  // No record left (only with thousands of handles open): the handle is counted, not reclaimed at this process's end.
  if (record === -1) return;
  const base = at(record);
  meta[base + BLOCK] = block;
  meta[base + PID] = me;
  meta[base + COUNT] = 1;
}

/** Closes one handle of this process on the block in `record`. */
function closeHandle(meta: Int32Array, block: number): void {
  const me = holderPid();
  for (let record = 0; record < meta[HIGH]; record++) {
    const base = at(record);
    if (kind(meta, record) === HANDLES && meta[base + BLOCK] === block && meta[base + PID] === me) {
      if (--meta[base + COUNT] === 0) dropRecord(meta, record);
      break;
    }
  }
  unref(meta, block, 1);
}

/**
 * Takes memory for `size` bytes: the smallest free extent that fits (split),
 * else the end of the arena. The block is RESERVED, held by this process's
 * handle: its creator zeroes it outside the mutex and then makes it LIVE, so
 * a creator terminated while zeroing leaves neither the mutex nor the memory.
 */
function allocate(meta: Int32Array, name: Uint8Array, size: number, flags: number): number {
  reap(meta);
  if (meta[BLOCKS] >= MAX_BLOCKS) {
    throw new RangeError(`SharedMemory: at most ${MAX_BLOCKS} blocks can exist at once; unlink some`);
  }
  const capacity = Math.ceil(Math.max(size, 1) / 8) * 8;
  let best = -1;
  for (let record = 0; record < meta[HIGH]; record++) {
    if (kind(meta, record) !== FREE) continue;
    const length = meta[at(record) + CAPACITY] >>> 0;
    if (length >= capacity && (best === -1 || length < meta[at(best) + CAPACITY] >>> 0)) best = record;
  }
  const record = takeRecord(meta, RESERVED | flags);
  if (record === -1) throw new RangeError("SharedMemory: the table of blocks is full; unlink or close some");
  const base = at(record);
  if (best !== -1) {
    const offset = meta[at(best) + OFFSET] >>> 0;
    const length = meta[at(best) + CAPACITY] >>> 0;
    if (length - capacity >= MIN_SPLIT) {
      meta[at(best) + OFFSET] = offset + capacity;
      meta[at(best) + CAPACITY] = length - capacity;
      meta[base + CAPACITY] = capacity;
    } else {
      dropRecord(meta, best);
      meta[base + CAPACITY] = length;
    }
    meta[base + OFFSET] = offset;
  } else {
    const start = top(meta);
    if (start + capacity > MAX_BYTES) {
      dropRecord(meta, record);
      throw new RangeError(`SharedMemory: no room for ${size} more bytes (all blocks together may use 4 GiB)`);
    }
    const buffer = arena();
    if (start + capacity > buffer.byteLength) {
      buffer.grow(Math.min(MAX_BYTES, Math.max(start + capacity, buffer.byteLength * 2)));
    }
    meta[ARENA_TOP] = start + capacity;
    meta[base + OFFSET] = start;
    meta[base + CAPACITY] = capacity;
  }
  meta[base + SIZE] = size;
  meta[base + REFS] = 0;
  meta[base + NAME_LENGTH] = name.length;
  new Uint8Array(meta.buffer, (base + NAME) * 4, NAME_BYTES).set(name);
  meta[BLOCKS]++;
  addHandle(meta, record);
  return record;
}

/** Options of {@linkcode SharedMemory}, as the arguments of Python's `SharedMemory(name, create, size)`. */
export interface SharedMemoryOptions {
  /** The block's name; a new block gets a unique `psm_…` name when none is given. */
  name?: string;
  /** Create a new block (`true`) or attach to an existing one (`false`, the default). */
  create?: boolean;
  /** The new block's size in bytes; ignored when attaching. */
  size?: number;
}

function checkName(name: unknown): Uint8Array {
  if (typeof name !== "string" || name === "") throw new TypeError("SharedMemory: name must be a non-empty string");
  const bytes = encoder.encode(name);
  if (bytes.length > NAME_BYTES) throw new RangeError(`SharedMemory: name is longer than ${NAME_BYTES} bytes: ${name}`);
  return bytes;
}

function uniqueName(meta: Int32Array): string {
  for (;;) {
    const name = `psm_${crypto.getRandomValues(new Uint32Array(1))[0].toString(16).padStart(8, "0")}`;
    if (find(meta, encoder.encode(name), true) === -1) return name;
  }
}

/**
 * A new block that loses its name when any process holding it ends, and
 * its memory once the others close it: a block two processes use between
 * them (a manager caller's answers), which a terminated one must not leave
 * behind. Not part of the public API.
 *
 * @example
 * ```ts
 * const answers = createScoped("manager.42", 4096);
 * answers.close();
 * ```
 */
export function createScoped(name: string, size: number): SharedMemory {
  // The flags reach the constructor as revived state does (revival.ts).
  return reviving(SCOPED, () => new SharedMemory({ name, create: true, size }));
}

/**
 * A named block of shared bytes. One process creates it; any process of the
 * program attaches to it by name (or receives it in `args`); each closes its
 * handle, and one unlinks the name. A process that ends without closing its
 * handles has them closed for it.
 *
 * @throws {Error} when creating a name that exists, or attaching to one that does not.
 * @throws {RangeError} for a size below 1 when creating.
 *
 * @example
 * ```ts
 * import { Process, SharedMemory } from "@mp/multiprocessing";
 *
 * export function fill(name: string) {
 *   using shm = new SharedMemory({ name });
 *   shm.buf.fill(7);
 * }
 *
 * if (import.meta.main) {
 *   const shm = new SharedMemory({ create: true, size: 4 });
 *   const p = new Process({ target: fill, args: [shm.name] });
 *   p.start();
 *   await p.join();
 *   console.log([...shm.buf]); // [7, 7, 7, 7]
 *   shm.close();
 *   shm.unlink();
 * }
 * ```
 */
export class SharedMemory {
  #record: number;
  #name: string;
  #size: number;
  #buf: Uint8Array | null;

  /** Creates a block (`{ create: true, size, name? }`) or attaches to one (`{ name }`). */
  constructor(options: SharedMemoryOptions = {}) {
    const flags = adopted<number>() ?? 0;
    const { name, create = false, size = 0 } = options;
    if (create) {
      if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 1) {
        throw new RangeError(`new SharedMemory: size must be a positive integer when creating, got ${String(size)}`);
      }
      if (size >= MAX_BYTES) throw new RangeError(`new SharedMemory: size must be below 4 GiB, got ${size}`);
    } else if (name === undefined) {
      throw new TypeError("new SharedMemory: give the name of a block to attach to, or { create: true, size }");
    }
    const bytes = name === undefined ? undefined : checkName(name);
    [this.#record, this.#name] = locked((meta): [number, string] => {
      if (create) {
        const chosen = name ?? uniqueName(meta);
        if (bytes !== undefined && find(meta, bytes, true) !== -1) {
          throw new Error(`new SharedMemory: a block named '${name}' already exists`);
        }
        return [allocate(meta, bytes ?? encoder.encode(chosen), size, flags), chosen];
      }
      const record = find(meta, bytes!);
      if (record === -1) throw new Error(`new SharedMemory: no block is named '${name}'`);
      addHandle(meta, record);
      return [record, name!];
    });
    const meta = table();
    const base = at(this.#record);
    this.#size = meta[base + SIZE] >>> 0;
    this.#buf = new Uint8Array(arena(), meta[base + OFFSET] >>> 0, this.#size);
    if (create) {
      // A new block reads as zeros, as Python's does; only now can others attach to it (no other process writes STATE
      // of a reserved block while its creator lives).
      this.#buf.fill(0);
      Atomics.store(meta, base + STATE, LIVE | flags);
    }
  }

  /** The block's name, by which other processes attach to it. */
  get name(): string {
    return this.#name;
  }

  /** The block's size in bytes. */
  get size(): number {
    return this.#size;
  }

  /**
   * The block's bytes, shared with every process attached to it.
   *
   * @throws {Error} after `close()`.
   */
  get buf(): Uint8Array {
    if (!this.#buf) throw new Error(`SharedMemory '${this.#name}' is closed`);
    return this.#buf;
  }

  /**
   * Closes this handle: `buf` throws afterwards. Other handles, and the
   * name, stay. Closing twice does nothing.
   *
   * @example
   * ```ts
   * import { SharedMemory } from "@mp/multiprocessing";
   * const shm = new SharedMemory({ create: true, size: 8 });
   * shm.close();
   * shm.unlink();
   * ```
   */
  close(): void {
    if (!this.#buf) return;
    this.#buf = null;
    locked((meta) => closeHandle(meta, this.#record));
  }

  /**
   * Removes the name: no process can attach to it any more, and its memory
   * is reused once every handle is closed. Call it once, from one process.
   *
   * @throws {Error} when the name was already unlinked.
   *
   * @example
   * ```ts
   * import { SharedMemory } from "@mp/multiprocessing";
   * const shm = new SharedMemory({ create: true, size: 8 });
   * shm.unlink();
   * shm.close();
   * ```
   */
  unlink(): void {
    locked((meta) => {
      const base = at(this.#record);
      const state = meta[base + STATE];
      if ((state & KIND) !== LIVE || nameOf(meta, this.#record) !== this.#name) {
        throw new Error(`SharedMemory '${this.#name}' was already unlinked`);
      }
      meta[base + STATE] = UNLINKED | (state & ~KIND);
      if (meta[base + REFS] <= 0) release(meta, this.#record);
    });
  }

  /** `using shm = new SharedMemory(…)` closes the handle at the end of the block. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Sends the name; the other process attaches a handle of its own, to close there.
   *
   * @ignore
   */
  [reduce](): Reduction {
    return { kind: "@mp/SharedMemory", state: this.#name };
  }

  /** Shows the name and size, as Python's repr does. */
  toString(): string {
    return `SharedMemory('${this.#name}', size=${this.#size})`;
  }
}

registerKind("@mp/SharedMemory", (name) => new SharedMemory({ name: name as string }));
