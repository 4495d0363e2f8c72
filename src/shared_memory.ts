/**
 * `SharedMemory`, as Python's `multiprocessing.shared_memory`: named blocks
 * of bytes that any process of the program can create, attach to by name,
 * close and unlink.
 *
 * Workers share no address space, and a SharedArrayBuffer only reaches a
 * worker in a message, so a name could not be looked up synchronously in a
 * process started before the block existed. Instead, every block lives in one
 * growable SharedArrayBuffer, the arena, that the main process creates and
 * every process receives when it starts (`inheritable` in process.ts). The
 * arena's head is a table of names, offsets and sizes, changed under a short
 * mutex, so creating, attaching and unlinking work from any process at once.
 * The arena reserves 4 GiB of address space and grows as blocks are created;
 * a block's memory is reused for a new block once it is unlinked and every
 * handle to it is closed.
 *
 * @module
 */
import { adapter } from "./adapters/mod.ts";
import { currentProcess, hasEnded, inheritable } from "./process.ts";
import { reduce, type Reduction, registerKind } from "./reduction.ts";

const MUTEX = 0; // the pid of the process changing the table, or 0
const SLOTS = 1024;
const SLOT_INTS = 32;
const HEAD_INTS = 16;
const NAME_BYTES = (SLOT_INTS - 6) * 4;
const DATA_START = (HEAD_INTS + SLOTS * SLOT_INTS) * 4;
const MAX_BYTES = 2 ** 32;

// A table slot.
const STATE = 0;
const OFFSET = 1;
const CAPACITY = 2;
const SIZE = 3;
const REFS = 4;
const NAME_LENGTH = 5;
const NAME = 6;

const EMPTY = 0; // never used
const LIVE = 1; // named, attachable
const UNLINKED = 2; // no name any more, still attached somewhere
const FREE = 3; // its memory is there for the next block

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
  const me = currentProcess().pid!;
  for (;;) {
    const holder = Atomics.compareExchange(meta, MUTEX, 0, me);
    if (holder === 0) break;
    // A process that ended mid-change leaves the table as it was; taking over beats a hang.
    if (hasEnded(holder)) Atomics.compareExchange(meta, MUTEX, holder, 0);
    else if (mayBlock) Atomics.wait(meta, MUTEX, holder, 1);
  }
  try {
    return change(meta);
  } finally {
    Atomics.store(meta, MUTEX, 0);
    Atomics.notify(meta, MUTEX);
  }
}

function slotAt(slot: number): number {
  return HEAD_INTS + slot * SLOT_INTS;
}

function nameOf(meta: Int32Array, at: number): string {
  const bytes = new Uint8Array(meta.buffer, (at + NAME) * 4, meta[at + NAME_LENGTH]).slice();
  return decoder.decode(bytes);
}

function find(meta: Int32Array, name: string): number {
  for (let slot = 0; slot < SLOTS; slot++) {
    const at = slotAt(slot);
    if (meta[at + STATE] === LIVE && nameOf(meta, at) === name) return slot;
  }
  return -1;
}

/** Takes memory for `size` bytes: the smallest free block that fits, else the end of the arena. */
function allocate(meta: Int32Array, name: Uint8Array, size: number): number {
  let best = -1;
  let empty = -1;
  let end = DATA_START;
  for (let slot = 0; slot < SLOTS; slot++) {
    const at = slotAt(slot);
    const state = meta[at + STATE];
    if (state === EMPTY) {
      if (empty === -1) empty = slot;
      continue;
    }
    end = Math.max(end, (meta[at + OFFSET] >>> 0) + (meta[at + CAPACITY] >>> 0));
    if (state === FREE && (meta[at + CAPACITY] >>> 0) >= size) {
      if (best === -1 || meta[at + CAPACITY] >>> 0 < meta[slotAt(best) + CAPACITY] >>> 0) best = slot;
    }
  }
  let slot = best;
  if (slot === -1) {
    if (empty === -1) throw new RangeError(`SharedMemory: at most ${SLOTS} blocks can exist at once; unlink some`);
    const capacity = Math.ceil(Math.max(size, 1) / 8) * 8;
    if (end + capacity > MAX_BYTES) {
      throw new RangeError(`SharedMemory: no room for ${size} more bytes (all blocks together may use 4 GiB)`);
    }
    const buffer = arena();
    if (end + capacity > buffer.byteLength) {
      buffer.grow(Math.min(MAX_BYTES, Math.max(end + capacity, buffer.byteLength * 2)));
    }
    slot = empty;
    const at = slotAt(slot);
    meta[at + OFFSET] = end;
    meta[at + CAPACITY] = capacity;
  }
  const at = slotAt(slot);
  // A new block reads as zeros, as Python's does.
  new Uint8Array(arena(), meta[at + OFFSET] >>> 0, size).fill(0);
  meta[at + SIZE] = size;
  meta[at + REFS] = 1;
  meta[at + NAME_LENGTH] = name.length;
  new Uint8Array(meta.buffer, (at + NAME) * 4, NAME_BYTES).set(name);
  Atomics.store(meta, at + STATE, LIVE);
  return slot;
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
    if (find(meta, name) === -1) return name;
  }
}

/**
 * A named block of shared bytes. One process creates it; any process of the
 * program attaches to it by name (or receives it in `args`); each closes its
 * handle, and one unlinks the name.
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
  #slot: number;
  #name: string;
  #size: number;
  #buf: Uint8Array | null;

  /** Creates a block (`{ create: true, size, name? }`) or attaches to one (`{ name }`). */
  constructor(options: SharedMemoryOptions = {}) {
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
    [this.#slot, this.#name] = locked((meta): [number, string] => {
      if (create) {
        const chosen = name ?? uniqueName(meta);
        if (name !== undefined && find(meta, name) !== -1) {
          throw new Error(`new SharedMemory: a block named '${name}' already exists`);
        }
        return [allocate(meta, bytes ?? encoder.encode(chosen), size), chosen];
      }
      const slot = find(meta, name!);
      if (slot === -1) throw new Error(`new SharedMemory: no block is named '${name}'`);
      meta[slotAt(slot) + REFS]++;
      return [slot, name!];
    });
    const meta = table();
    const at = slotAt(this.#slot);
    this.#size = meta[at + SIZE] >>> 0;
    this.#buf = new Uint8Array(arena(), meta[at + OFFSET] >>> 0, this.#size);
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
    locked((meta) => {
      const at = slotAt(this.#slot);
      if (--meta[at + REFS] === 0 && meta[at + STATE] === UNLINKED) meta[at + STATE] = FREE;
    });
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
      const at = slotAt(this.#slot);
      if (meta[at + STATE] !== LIVE || nameOf(meta, at) !== this.#name) {
        throw new Error(`SharedMemory '${this.#name}' was already unlinked`);
      }
      meta[at + STATE] = meta[at + REFS] === 0 ? FREE : UNLINKED;
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
