/**
 * The table behind `SharedMemory` (shared_memory.ts): where every block of
 * the program lives, and the records that say which are named, open and free.
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
/** All blocks together stay below this many bytes, and so does each. */
export const MAX_BYTES: number = 2 ** 32;
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
export const SCOPED: number = 0x100;

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
 * Creates a block of `size` bytes named `name` (a unique `psm_…` name when
 * `undefined`), held by one handle of this process and not yet attachable:
 * its creator zeroes {@linkcode blockBytes} and then calls
 * {@linkcode makeAttachable}.
 *
 * @throws {Error} when a block of that name exists.
 *
 * @example
 * ```ts
 * const { record } = createBlock(undefined, 8, 0);
 * makeAttachable(record, 0);
 * ```
 */
export function createBlock(name: string | undefined, size: number, flags: number): { record: number; name: string } {
  const bytes = name === undefined ? undefined : checkName(name);
  return locked((meta) => {
    const chosen = name ?? uniqueName(meta);
    if (bytes !== undefined && find(meta, bytes, true) !== -1) {
      throw new Error(`new SharedMemory: a block named '${name}' already exists`);
    }
    return { record: allocate(meta, bytes ?? encoder.encode(chosen), size, flags), name: chosen };
  });
}

/**
 * Lets other processes attach to a block {@linkcode createBlock} made (no
 * other process writes the state of a reserved block while its creator lives).
 *
 * @example
 * ```ts
 * makeAttachable(createBlock("counts", 8, 0).record, 0);
 * ```
 */
export function makeAttachable(record: number, flags: number): void {
  Atomics.store(table(), at(record) + STATE, LIVE | flags);
}

/**
 * Adds a handle of this process on the live block named `name`, and returns its record.
 *
 * @throws {Error} when no block is named `name`.
 *
 * @example
 * ```ts
 * const record = attachBlock("counts");
 * ```
 */
export function attachBlock(name: string): number {
  const bytes = checkName(name);
  return locked((meta) => {
    const record = find(meta, bytes);
    if (record === -1) throw new Error(`new SharedMemory: no block is named '${name}'`);
    addHandle(meta, record);
    return record;
  });
}

/**
 * The bytes of the block in `record`, as long as its size as asked.
 *
 * @example
 * ```ts
 * blockBytes(attachBlock("counts")).fill(0);
 * ```
 */
export function blockBytes(record: number): Uint8Array {
  const meta = table();
  const base = at(record);
  return new Uint8Array(arena(), meta[base + OFFSET] >>> 0, meta[base + SIZE] >>> 0);
}

/**
 * Closes one handle of this process on the block in `record`.
 *
 * @example
 * ```ts
 * closeBlock(attachBlock("counts"));
 * ```
 */
export function closeBlock(record: number): void {
  locked((meta) => closeHandle(meta, record));
}

/**
 * Removes the name of the block in `record`; its memory comes back once no handle is open.
 *
 * @throws {Error} when it was already unlinked (`name` no longer names it).
 *
 * @example
 * ```ts
 * unlinkBlock(attachBlock("counts"), "counts");
 * ```
 */
export function unlinkBlock(record: number, name: string): void {
  locked((meta) => {
    const base = at(record);
    const state = meta[base + STATE];
    if ((state & KIND) !== LIVE || nameOf(meta, record) !== name) {
      throw new Error(`SharedMemory '${name}' was already unlinked`);
    }
    meta[base + STATE] = UNLINKED | (state & ~KIND);
    if (meta[base + REFS] <= 0) release(meta, record);
  });
}
