/**
 * `SharedMemory`, as Python's `multiprocessing.shared_memory`: named blocks
 * of bytes that any process of the program can create, attach to by name,
 * close and unlink. Where the blocks live, and how any process finds one by
 * name synchronously, is the table's job (shared_memory_table.ts).
 *
 * @module
 */
import { reduce, type Reduction, registerKind } from "./reduction.ts";
import { adopted, reviving } from "./revival.ts";
import {
  attachBlock,
  blockBytes,
  closeBlock,
  createBlock,
  makeAttachable,
  MAX_BYTES,
  SCOPED,
  unlinkBlock,
} from "./shared_memory_table.ts";

/** Options of {@linkcode SharedMemory}, as the arguments of Python's `SharedMemory(name, create, size)`. */
export interface SharedMemoryOptions {
  /** The block's name; a new block gets a unique `psm_…` name when none is given. */
  name?: string;
  /** Create a new block (`true`) or attach to an existing one (`false`, the default). */
  create?: boolean;
  /** The new block's size in bytes; ignored when attaching. */
  size?: number;
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
    if (create) ({ record: this.#record, name: this.#name } = createBlock(name, size, flags));
    else [this.#record, this.#name] = [attachBlock(name!), name!];
    this.#buf = blockBytes(this.#record);
    this.#size = this.#buf.length;
    if (create) {
      // A new block reads as zeros, as Python's does; only now can others attach to it.
      this.#buf.fill(0);
      makeAttachable(this.#record, flags);
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
    closeBlock(this.#record);
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
    unlinkBlock(this.#record, this.#name);
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
