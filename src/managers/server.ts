/**
 * The manager's server: the loop that reads requests from the manager's
 * ring and answers each call into its caller's answer ring, the reference
 * counts that decide when an object is dropped, and the reaping of callers
 * that ended without a word. `managerServer` is the target of the process
 * that `SyncManager.start()` starts.
 *
 * @module
 */
import { Feeder } from "../feeder.ts";
import { debug, info } from "../logging.ts";
import { pickle, pickleReduced, unpickle, unpickleReduced } from "../pickle.ts";
import { hasEnded } from "../pids.ts";
import { reduce, reduceError, type Reduction, reductionsIn } from "../reduction.ts";
import { Ring } from "../ring.ts";
import { SharedMemory } from "../shared_memory.ts";
import { create, methodsOf } from "./builtins.ts";
import {
  answersName,
  discard,
  HOT,
  LAST_ID,
  managerMemory,
  REAP_MS,
  SERVER_POLL_MS,
  SERVER_TURN_MS,
  SHUTDOWN,
} from "./memory.ts";
import { Poller } from "./polling.ts";
import { declaredExposed, exposedOf, make, methodOf, nameOf, type Referent } from "./referents.ts";
import { isThenable } from "../thenable.ts";
import {
  ADOPT,
  answer,
  type Builtin,
  BYE,
  CALL,
  type Control,
  CREATE,
  DECREF,
  ERROR,
  EXPOSED,
  type How,
  INCREF,
  loadComlink,
  PROXY,
  type ProxyState,
  readRequest,
  type Recipe,
  type Request,
  type Typeid,
  VALUE,
} from "./wire.ts";

/** A proxy made in the server for a method's result (Python's `method_to_typeid`): pickles as the proxy it is. */
class ProxyOut {
  readonly state: ProxyState;
  constructor(state: ProxyState) {
    this.state = state;
  }
  [reduce](): Reduction {
    return { kind: PROXY, state: this.state };
  }
}

/** A calling process, as the server sees it: its answer block, and answers in order waiting for room. */
interface Caller {
  block: SharedMemory;
  answers: Feeder;
  /** Aborted when the caller ends: answers still waiting for room are dropped, so the block can be let go. */
  gone: AbortController;
}

/** An error as bytes, for its caller; one whose properties cannot be sent keeps its name, message and stack. */
function failure(error: unknown): Uint8Array {
  const reduced = reduceError(error);
  try {
    return pickle(reduced, "the error");
  } catch {
    return pickle({ name: reduced.name, message: reduced.message, stack: reduced.stack }, "the error");
  }
}

/** The state of a manager's server: its objects and its callers. Every call gets exactly one answer. */
class Server {
  readonly address: string;
  readonly block: SharedMemory;
  readonly cells: Int32Array;
  readonly requests: Ring;
  #referents = new Map<number, Referent>();
  #callers = new Map<number, Caller | null>();
  /** The handles each process holds, by object id: given back for it if it ends without a BYE. */
  #held = new Map<number, Map<number, number>>();

  constructor(address: string) {
    this.address = address;
    this.block = new SharedMemory({ name: address });
    ({ cells: this.cells, requests: this.requests } = managerMemory(this.block, false));
  }

  /** How many objects it keeps. */
  get objects(): number {
    return this.#referents.size;
  }

  /** Serves requests until `stop` aborts or the manager is shut down. */
  async serve(stop: AbortSignal): Promise<void> {
    const { cells, requests } = this;
    const stopped = () => stop.aborted || Atomics.load(cells, SHUTDOWN) === 1;
    let turn = performance.now();
    const poller = new Poller(SERVER_POLL_MS);
    Atomics.store(cells, HOT, 1);
    while (!stopped()) {
      const bytes = requests.receiveIfReady("the manager's server");
      if (bytes) {
        this.#handle(readRequest(bytes));
        if (performance.now() - turn > SERVER_TURN_MS) {
          this.#reap();
          await new Promise((resolve) => setTimeout(resolve, 0));
          turn = performance.now();
        }
        continue;
      }
      if (poller.poll(() => requests.hasData() || stopped())) continue;
      Atomics.store(cells, HOT, 0);
      this.#reap();
      try {
        await requests.run(requests.ready(), { timeout: REAP_MS, signal: stop });
      } catch {
        // Aborted: the loop ends.
      }
      Atomics.store(cells, HOT, 1);
      turn = performance.now();
    }
  }

  #handle({ op, pid, call, object, name, payload }: Request): void {
    if (op === CALL) {
      // Calls on an object still being made wait for it, in the order they came.
      const making = this.#referents.get(object)?.making;
      if (making) void making.then(() => this.#answer(pid, this.#call(call, object, name, payload)));
      else this.#answer(pid, this.#call(call, object, name, payload));
    } else if (op === CREATE) {
      const { data, reduced } = unpickleReduced(payload);
      const typeid = name as Typeid;
      const referent: Referent = { typeid, value: undefined, handles: 1, reduced };
      if (typeid === "object") make(referent, data as Recipe);
      else referent.value = create(typeid as Builtin, data);
      this.#referents.set(object, referent);
      this.#attribute(pid, object, 1);
    } else if (op === INCREF) {
      this.#count(object, 1);
    } else if (op === DECREF) {
      this.#attribute(pid, object, -1);
      this.#count(object, -1);
    } else if (op === ADOPT) {
      this.#attribute(pid, object, 1);
    } else if (op === BYE) {
      // Every handle a process holds is attributed to it (CREATE, ADOPT), so no record means it held none or
      // #reap already gave them back: its BYE can still be in the ring when its end is seen, and must not give
      // them back twice (that dropped a dict that the parent still held, on Deno, 1 run in 4 of examples/manager.ts).
      if (this.#held.has(pid)) {
        for (const [id, count] of unpickle(payload) as [number, number][]) this.#count(id, -count);
      }
      this.#held.delete(pid);
      this.#forget(pid);
    }
  }

  /** Notes that `pid` holds `change` more handles on `object` (it counts them already or will). */
  #attribute(pid: number, object: number, change: number): void {
    let held = this.#held.get(pid);
    if (!held) {
      if (change < 0) return;
      this.#held.set(pid, held = new Map());
    }
    const count = (held.get(object) ?? 0) + change;
    if (count > 0) held.set(object, count);
    else held.delete(object);
  }

  /** Lets go of a caller's answer block. */
  #forget(pid: number): void {
    const caller = this.#callers.get(pid);
    this.#callers.delete(pid);
    // Its block is reused once freed: answers still waiting for room must not be written into another's memory.
    if (caller) void caller.answers.flushed().then(() => discard(caller.block));
  }

  /**
   * Does for each process that ended without a BYE (a terminated child) what
   * its BYE would have done: its handles go back, and its answer block with
   * the answers it will never read. Python's manager keeps such objects until
   * shutdown; a long-running program that kills clients would grow for ever.
   */
  #reap(): void {
    for (const pid of new Set([...this.#callers.keys(), ...this.#held.keys()])) {
      if (!hasEnded(pid)) continue;
      for (const [id, count] of this.#held.get(pid) ?? []) this.#count(id, -count);
      this.#held.delete(pid);
      this.#callers.get(pid)?.gone.abort();
      this.#forget(pid);
    }
  }

  #count(object: number, change: number): void {
    const referent = this.#referents.get(object);
    if (referent && (referent.handles += change) <= 0) this.#referents.delete(object);
  }

  /** Runs one method; its answer, a value or an error (later, for a method of a user's class that returns a Promise). */
  #call(call: number, object: number, method: string, payload: Uint8Array): Uint8Array | Promise<Uint8Array> {
    try {
      const referent = this.#referents.get(object);
      if (!referent) throw new Error(`the managed object ${object} was released: no proxy of it was left`);
      const { typeid, value } = referent;
      if (method === EXPOSED) return answer(call, VALUE, pickle(exposedOf(referent), "the exposed methods"));
      const builtin = typeid === "object" ? undefined : methodsOf[typeid];
      const run = builtin ? (Object.hasOwn(builtin, method) ? builtin[method] : undefined) : methodOf(referent, method);
      if (!run) throw new TypeError(`a ${nameOf(referent)} proxy has no method '${method}'`);
      const args = this.#args(referent, payload);
      // A builtin method takes its object first; a method of a user's class is called on it.
      const result = builtin ? run(value as never, ...args) : Reflect.apply(run, value, args);
      if (isThenable(result)) {
        return Promise.resolve(result).then(
          (value) => this.#value(call, referent, method, value),
          (error) => answer(call, ERROR, failure(error)),
        );
      }
      return this.#value(call, referent, method, result);
    } catch (error) {
      return answer(call, ERROR, failure(error));
    }
  }

  /**
   * A call's arguments. A dict, list or namespace keeps values for others, so
   * they stay as they came, proxies as their reductions; an object of a
   * user's class uses them, so they are revived.
   */
  #args(referent: Referent, payload: Uint8Array): unknown[] {
    if (referent.typeid === "object") return unpickle(payload) as unknown[];
    const { data, reduced } = unpickleReduced(payload);
    if (reduced) referent.reduced = true;
    return data as unknown[];
  }

  /** The answer that carries `result`; each proxy in it becomes a handle in the caller. */
  #value(call: number, referent: Referent, method: string, result: unknown): Uint8Array {
    // Each proxy in the result is counted here for the caller, which adopts it when it arrives.
    try {
      if (referent.typeid === "object") {
        const becomes = referent.how?.methodToTypeid?.[method];
        if (becomes !== undefined) result = this.#keep(referent.how!, becomes, result);
        return answer(call, VALUE, pickle(result, `the result of ${nameOf(referent)}.${method}()`));
      }
      if (referent.reduced) {
        for (const state of reductionsIn(result, PROXY) as ProxyState[]) {
          if (state.address === this.address) this.#count(state.id, 1);
        }
      }
      return answer(call, VALUE, pickleReduced(result, referent.reduced));
    } catch (error) {
      return answer(call, ERROR, failure(error));
    }
  }

  /**
   * Keeps a method's result as an object of the registered `typeid`, and
   * gives the proxy that goes back in its place. Its one handle is the
   * caller's, who adopts it when the answer arrives.
   */
  #keep(how: How, typeid: string, value: unknown): ProxyOut {
    const registration = how.types[typeid] ?? {};
    const id = Atomics.add(this.cells, LAST_ID, 1) + 1;
    const exposed = registration.exposed ?? declaredExposed(value);
    const kept: How = { construct: true, types: how.types, ...registration };
    this.#referents.set(id, {
      typeid: "object",
      value,
      handles: 1,
      reduced: false,
      className: typeid,
      exposed,
      how: kept,
    });
    return new ProxyOut({ address: this.address, id, typeid: "object", className: typeid, exposed });
  }

  /** Sends `reply` to the caller `pid`, in order after its earlier answers, without waiting for room. */
  #answer(pid: number, reply: Uint8Array | Promise<Uint8Array>): void {
    if (reply instanceof Promise) return void reply.then((bytes) => this.#answer(pid, bytes));
    let caller = this.#callers.get(pid);
    if (caller === undefined) {
      // A new caller may come in the place of one that was killed: its block is let go first.
      this.#reap();
      try {
        const block = new SharedMemory({ name: answersName(this.address, pid) });
        const answers = new Feeder(
          new Ring(block.buf.buffer as SharedArrayBuffer, block.buf.byteOffset, block.size),
          0,
        );
        // A caller that ended without a word leaves a full ring: the server's own end must not wait on it.
        answers.abandonAtExit = true;
        caller = { block, answers, gone: new AbortController() };
      } catch {
        caller = null; // It ended, and took its answer block with it.
      }
      this.#callers.set(pid, caller);
    }
    // Rejects only when the caller ended, and its answers with it.
    caller?.answers.post(reply, Infinity, caller.gone.signal).catch(() => {});
  }

  /**
   * At the end: lets go of the blocks, unlinking those of callers that will
   * not. A block with answers still waiting for room stays: its caller is
   * gone or not reading, and the memory must not be handed to another block.
   */
  close(): void {
    for (const caller of this.#callers.values()) if (caller?.answers.pending === 0) discard(caller.block);
    this.block.close();
  }
}

/** This module, which exports {@linkcode managerServer}: where the server process finds its target. */
export const serverModule: string = import.meta.url;

/**
 * The manager's server: the target of the process that `Manager()` starts.
 * It keeps the managed objects and serves their proxies until the manager
 * shuts down. Not for direct use.
 *
 * @example
 * ```ts
 * import { Manager } from "@mp/multiprocessing";
 * await using manager = await Manager(); // starts a process running managerServer
 * ```
 */
export async function managerServer(port: MessagePort, address: string): Promise<void> {
  const Comlink = await loadComlink();
  const server = new Server(address);
  const stop = new AbortController();
  const control: Control = {
    ready: () => true,
    numberOfObjects: () => server.objects,
    shutdown: () => (debug("manager received shutdown message"), stop.abort()),
  };
  Comlink.expose(control, port);
  info("manager serving at %r", address);
  try {
    await server.serve(stop.signal);
  } finally {
    server.close();
    port.close();
  }
}
