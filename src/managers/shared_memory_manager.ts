/**
 * `SharedMemoryManager`, as Python's `multiprocessing.managers.SharedMemoryManager`:
 * it creates `SharedMemory` blocks and `ShareableList`s, from any process it
 * is sent to, and `shutdown()` unlinks every one it made.
 *
 * Python's needs a server process because its blocks are files of the OS
 * that outlive a crashed program. Here every block lives in the program's
 * arena (shared_memory.ts), which ends with the program, so the manager only
 * has to remember names: the process that started it keeps them, and any
 * other process sends the names it creates through a Queue to it, ahead of
 * its own end (a Queue's items are in the ring before a child ends).
 *
 * @module
 */
import { currentProcess } from "../lifecycle.ts";
import { Queue } from "../queues.ts";
import { dump, load, reduce, type Reduction, registerKind } from "../reduction.ts";
import { type ShareableItem, ShareableList } from "../shareable_list.ts";
import { SharedMemory } from "../shared_memory.ts";

/** What a manager is in another process: where to send the names it makes. */
interface ManagerState {
  names: Queue<string>;
  owner: number;
}

/**
 * Makes shared memory blocks and lists that are unlinked together at
 * `shutdown()` (or at the end of an `await using` block). It can be sent to
 * other processes, and what they make through it is unlinked too.
 *
 * @example
 * ```ts
 * import { SharedMemoryManager } from "@mp/multiprocessing";
 *
 * await using smm = await new SharedMemoryManager().start();
 * const shm = smm.SharedMemory(128);
 * const list = smm.ShareableList([1, 2, 3]);
 * console.log(shm.size, list.toArray()); // 128 [ 1, 2, 3 ]
 * // shutdown (here at the end of the block) unlinks both
 * ```
 */
export class SharedMemoryManager {
  #state?: ManagerState;
  /** The names this process made, in the process that started the manager. */
  #made = new Set<string>();
  #shutDown = false;

  /**
   * Starts the manager; resolves to it. Starting twice does nothing more.
   *
   * @example
   * ```ts
   * import { SharedMemoryManager } from "@mp/multiprocessing";
   * const smm = await new SharedMemoryManager().start();
   * await smm.shutdown();
   * ```
   */
  start(): Promise<this> {
    if (this.#shutDown) return Promise.reject(new Error("SharedMemoryManager.start(): it has been shut down"));
    this.#state ??= { names: new Queue<string>(), owner: currentProcess().pid! };
    return Promise.resolve(this);
  }

  #use(what: string): ManagerState {
    if (this.#shutDown) throw new Error(`SharedMemoryManager.${what}: the manager has been shut down`);
    if (!this.#state) throw new Error(`SharedMemoryManager.${what}: the manager is not started; await start() first`);
    return this.#state;
  }

  #track(state: ManagerState, name: string): void {
    if (state.owner === currentProcess().pid) this.#made.add(name);
    else void state.names.put(name);
  }

  /**
   * A new block of `size` bytes, unlinked at `shutdown()` (Python's `smm.SharedMemory(size)`).
   *
   * @throws {RangeError} for a size below 1.
   */
  SharedMemory(size: number): SharedMemory {
    const state = this.#use("SharedMemory()");
    const shm = new SharedMemory({ create: true, size });
    this.#track(state, shm.name);
    return shm;
  }

  /**
   * A new {@linkcode ShareableList} holding `sequence`, unlinked at `shutdown()`.
   *
   * @throws {TypeError} for an item a ShareableList cannot hold.
   */
  ShareableList(sequence: Iterable<ShareableItem> = []): ShareableList {
    const state = this.#use("ShareableList()");
    const list = new ShareableList(sequence);
    this.#track(state, list.shm.name);
    return list;
  }

  /**
   * Unlinks every block made through this manager, in any process, that is
   * still linked. Handles still open keep their memory until closed, as in
   * Python. Only the process that started the manager shuts it down; calling
   * it again does nothing.
   *
   * @throws {Error} when called in another process than the one that started it.
   */
  shutdown(): Promise<void> {
    if (this.#shutDown || !this.#state) {
      this.#shutDown = true;
      return Promise.resolve();
    }
    const state = this.#state;
    if (state.owner !== currentProcess().pid) {
      return Promise.reject(new Error("SharedMemoryManager.shutdown(): only the process that started it can"));
    }
    this.#shutDown = true;
    const names = new Set(this.#made);
    while (!state.names.empty()) {
      try {
        names.add(state.names.getNowait());
      } catch {
        break; // Read by nobody else: empty means done.
      }
    }
    for (const name of names) {
      try {
        const shm = new SharedMemory({ name });
        shm.close();
        shm.unlink();
      } catch {
        // Unlinked already by its user.
      }
    }
    state.names.close();
    this.#made.clear();
    return Promise.resolve();
  }

  /** `await using smm = await new SharedMemoryManager().start()` shuts it down at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  /**
   * Sends where names go; the receiving process makes blocks that the starter unlinks.
   *
   * @ignore
   */
  [reduce](): Reduction {
    const { names, owner } = this.#use("sending");
    return { kind: "@mp/SharedMemoryManager", state: { names: dump(names, "names").data, owner } };
  }

  static {
    registerKind("@mp/SharedMemoryManager", (state) => {
      const manager = new SharedMemoryManager();
      const { names, owner } = state as { names: unknown; owner: number };
      manager.#state = { names: load(names, true) as Queue<string>, owner };
      return manager;
    });
  }
}
