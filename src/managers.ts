/**
 * Managers: Python's `multiprocessing.Manager`. A server process owns plain
 * objects (a dict, a list, a namespace); other processes reach them through
 * proxies, whose every method is async.
 *
 * The transport is shared memory, as under queues. The manager's block (a
 * {@linkcode SharedMemory} block, which any process of the program can find
 * by name) holds the ring of requests that every caller writes to; each
 * calling process has a block of its own with the ring of its answers. A
 * proxy is therefore only its manager's name and its object's id: it travels
 * in `args`, through a Queue or a Pipe and inside another managed object,
 * and connects from whichever process receives it. (A MessagePort reaches a
 * process only inside a message, so a proxy that arrives as bytes could not
 * connect through one.)
 *
 * Why callers spin: a round trip through two event loops takes 50-75 µs
 * between idle cores on a VM, most of it waking the sleeping thread, while a
 * thread that polls a shared cell sees a write within a microsecond. So the
 * server polls for a moment after each request before it sleeps (`HOT` tells
 * callers it is awake), and a caller polls for its answer while the server
 * is awake: a run of calls never sleeps, and a lone call costs one wake-up,
 * as a message would. comlink carries the manager's own control requests,
 * from the process that started it (is the server ready, shut down).
 *
 * Lifetimes follow Python's reference counts. The server counts the handles
 * on each object: the proxy that created it, one more each time a proxy is
 * sent (for the receiver), and one per proxy that a result carries back. A
 * proxy that is garbage-collected gives its handle back, and so do all the
 * proxies of a process that ends normally; at zero the object is dropped.
 * Each process tells the server which proxies it received (ADOPT), so the
 * server gives back the handles of a process that was terminated, and lets
 * go of its answer block, which lost its name with the process. A
 * proxy that was sent to the server inside a value keeps its object until
 * the manager shuts down, as the server does not track where it is stored.
 *
 * Locks, queues, events, barriers and shared values already work across
 * processes on shared memory, so the manager hands those out directly: they
 * behave as Python's proxies do, without a round trip per call.
 *
 * @module
 */
import type * as ComlinkModule from "comlink";
import { Barrier, type BarrierOptions } from "./barrier.ts";
import { Condition } from "./condition.ts";
import { Event } from "./event.ts";
import { Feeder } from "./feeder.ts";
import { BoundedSemaphore, Lock, RLock, Semaphore, type SemLock } from "./locks.ts";
import { debug, info } from "./logging.ts";
import { pickle, pickleReduced, unpickle, unpickleReduced } from "./pickle.ts";
import { PortCarrier, unref } from "./ports.ts";
import { beforeChildExit, currentProcess, hasEnded, Process, whenEnded } from "./process.ts";
import { JoinableQueue, Queue } from "./queues.ts";
import {
  reduce,
  type ReducedError,
  reduceError,
  type Reduction,
  reductionsIn,
  registerKind,
  reviveError,
} from "./reduction.ts";
import { Ring } from "./ring.ts";
import { createScoped, SharedMemory } from "./shared_memory.ts";
import { callerModule, describeTarget, type TargetSpec } from "./spawn.ts";
import { type ItemOf, SharedArray, type Typecode, Value } from "./sharedctypes.ts";
import { pollUntil } from "./wait.ts";

/** The kinds of object a manager's server keeps, by Python's typeid. */
type Builtin = "dict" | "list" | "Namespace";
/** "object": an object of a user's class (Python's `BaseManager.register`), reached through an AutoProxy. */
type Typeid = Builtin | "object";

// ---- The wire ---------------------------------------------------------------

/** What a request asks of the server. Only CALL is answered. */
const CALL = 0;
/** A new object; the request's name is its typeid, its payload the initial value. */
const CREATE = 1;
/** One more handle on an object: a proxy is being sent, and the receiver will hold it. */
const INCREF = 2;
/** A handle given back: a proxy was garbage-collected. */
const DECREF = 3;
/** The calling process ends: its payload is its handles as `[id, count]` pairs. */
const BYE = 4;
/**
 * A proxy arrived in the calling process (sent to it, or in a result): the
 * handle counted for it when it was sent is now this process's, and goes
 * back if the process is terminated without a BYE.
 */
const ADOPT = 5;
type Op = typeof CALL | typeof CREATE | typeof INCREF | typeof DECREF | typeof BYE | typeof ADOPT;

/** A request's fixed head, five Int32: op, the caller's pid, the call's id (0 when unanswered), the object's id, the name's length. */
const HEAD = 20;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Method names and typeids as bytes, kept: a program calls few distinct ones, and encoding is a tenth of a call. */
const names = new Map<string, Uint8Array>();

function nameBytes(name: string): Uint8Array {
  let bytes = names.get(name);
  if (!bytes) {
    bytes = encoder.encode(name);
    if (names.size < 1_024) names.set(name, bytes);
  }
  return bytes;
}

function readName(bytes: Uint8Array, start: number, end: number): string {
  let name = "";
  for (let i = start; i < end; i++) {
    if (bytes[i] >= 0x80) return decoder.decode(bytes.subarray(start, end));
    name += String.fromCharCode(bytes[i]);
  }
  return name;
}

function writeInt(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value;
  bytes[at + 1] = value >> 8;
  bytes[at + 2] = value >> 16;
  bytes[at + 3] = value >> 24;
}

function readInt(bytes: Uint8Array, at: number): number {
  return bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24);
}

/** One request as bytes: the head, the name (a method or a typeid), then the pickled payload. */
function request(op: Op, pid: number, call: number, object: number, name: string, payload?: Uint8Array): Uint8Array {
  const encoded = nameBytes(name);
  const bytes = new Uint8Array(HEAD + encoded.length + (payload?.length ?? 0));
  writeInt(bytes, 0, op);
  writeInt(bytes, 4, pid);
  writeInt(bytes, 8, call);
  writeInt(bytes, 12, object);
  writeInt(bytes, 16, encoded.length);
  bytes.set(encoded, HEAD);
  if (payload) bytes.set(payload, HEAD + encoded.length);
  return bytes;
}

interface Request {
  op: Op;
  pid: number;
  call: number;
  object: number;
  name: string;
  payload: Uint8Array;
}

function readRequest(bytes: Uint8Array): Request {
  const end = HEAD + readInt(bytes, 16);
  return {
    op: readInt(bytes, 0) as Op,
    pid: readInt(bytes, 4),
    call: readInt(bytes, 8),
    object: readInt(bytes, 12),
    name: readName(bytes, HEAD, end),
    payload: bytes.subarray(end),
  };
}

/** An answer: the call's id, whether it failed, then the pickled result or error. */
const VALUE = 0;
const ERROR = 1;

function answer(call: number, kind: typeof VALUE | typeof ERROR, payload: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(5 + payload.length);
  writeInt(bytes, 0, call);
  bytes[4] = kind;
  bytes.set(payload, 5);
  return bytes;
}

// ---- The manager's memory --------------------------------------------------

/** The cells at the head of the manager's block; the request ring follows them. */
const SHUTDOWN = 0; // 1 once the manager is shut down
const SERVER_PID = 1;
const HOT = 2; // 1 while the server serves or polls: a caller may poll for its answer
const LAST_ID = 3; // the last object id handed out
const CELLS = 16;
const REQUEST_CAPACITY = 1 << 18;
const ANSWER_CAPACITY = 1 << 18;
const BLOCK_SIZE = CELLS * 4 + Ring.size(REQUEST_CAPACITY);

/** How long the server polls for the next request before it sleeps, and a caller for its answer. */
const SERVER_POLL_MS = 0.5;
const CALLER_POLL_MS = 0.2;
/** A server kept busy still lets its event loop run this often (control requests, answers waiting for room). */
const SERVER_TURN_MS = 50;
/** How often a caller waiting for answers checks that the server is still there. */
const WATCH_MS = 25;
/** How often an idle server looks for callers that ended without a word. */
const REAP_MS = 250;

interface ManagerMemory {
  cells: Int32Array;
  requests: Ring;
}

/** The cells and request ring of a manager's block; `fresh` lays a new ring over a new block. */
function managerMemory(block: SharedMemory, fresh: boolean): ManagerMemory {
  const { buffer, byteOffset } = block.buf;
  const ringBytes = block.buf.subarray(CELLS * 4, BLOCK_SIZE);
  return {
    cells: new Int32Array(buffer, byteOffset, CELLS),
    requests: fresh
      ? Ring.create(REQUEST_CAPACITY, ringBytes)
      : new Ring(buffer as SharedArrayBuffer, ringBytes.byteOffset, ringBytes.byteLength),
  };
}

/** The block of a process's answers from the manager at `address`. */
function answersName(address: string, pid: number): string {
  return `${address}.${pid}`;
}

/** Closes a block, and unlinks it unless another process did already: whichever of its two users is last. */
function discard(block: SharedMemory): void {
  block.close();
  try {
    block.unlink();
  } catch {
    // The other end unlinked it.
  }
}

// ---- The server ----------------------------------------------------------
// deno-lint-ignore no-explicit-any
type Methods<T> = Record<string, (target: T, ...args: any[]) => unknown>;

/** Python's index rules: negative counts from the end; out of range is an IndexError (a RangeError here). */
function position(list: unknown[], index: number, what: string): number {
  if (!Number.isInteger(index)) throw new TypeError(`list.${what}: index must be an integer, got ${String(index)}`);
  const at = index < 0 ? list.length + index : index;
  if (at < 0 || at >= list.length) throw new RangeError(`list.${what}: index ${index} out of range`);
  return at;
}

/** Python's `==` for what a proxy can hold: plain data compared by value, as the server only ever sees copies. */
export function same(a: unknown, b: unknown): boolean {
  if (Object.is(a, b) || a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((item, i) => same(item, b[i]));
  if (a instanceof Map) {
    return b instanceof Map && a.size === b.size && [...a].every(([k, v]) => b.has(k) && same(v, b.get(k)));
  }
  if (Object.getPrototypeOf(a) !== Object.prototype || Object.getPrototypeOf(b) !== Object.prototype) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length &&
    keys.every((key) => key in b && same((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]));
}

function find(list: unknown[], value: unknown): number {
  return list.findIndex((item) => same(item, value));
}

const dictMethods: Methods<Map<unknown, unknown>> = {
  get: (d, key, fallback) => d.has(key) ? d.get(key) : fallback,
  set: (d, key, value) => void d.set(key, value),
  has: (d, key) => d.has(key),
  delete: (d, key) => d.delete(key),
  pop: (d, key, ...fallback) => {
    if (!d.has(key)) {
      if (fallback.length) return fallback[0];
      throw new RangeError(`dict.pop: no key ${String(key)}`);
    }
    const value = d.get(key);
    d.delete(key);
    return value;
  },
  setDefault: (d, key, value) => {
    if (!d.has(key)) d.set(key, value);
    return d.get(key);
  },
  update: (d, entries: Iterable<[unknown, unknown]>) => {
    for (const [key, value] of entries) d.set(key, value);
  },
  keys: (d) => [...d.keys()],
  values: (d) => [...d.values()],
  entries: (d) => [...d.entries()],
  size: (d) => d.size,
  clear: (d) => d.clear(),
  toMap: (d) => d,
};

const listMethods: Methods<unknown[]> = {
  append: (l, value) => void l.push(value),
  extend: (l, values: unknown[]) => void l.push(...values),
  insert: (l, index: number, value) => {
    // Python clamps an insert position instead of raising.
    const at = index < 0 ? Math.max(0, l.length + index) : Math.min(index, l.length);
    l.splice(at, 0, value);
  },
  pop: (l, index = -1) => {
    if (l.length === 0) throw new RangeError("list.pop: pop from empty list");
    return l.splice(position(l, index, "pop"), 1)[0];
  },
  remove: (l, value) => {
    const at = find(l, value);
    if (at < 0) throw new Error(`list.remove: ${String(value)} is not in the list`);
    l.splice(at, 1);
  },
  index: (l, value) => {
    const at = find(l, value);
    if (at < 0) throw new Error(`list.index: ${String(value)} is not in the list`);
    return at;
  },
  count: (l, value) => l.filter((item) => same(item, value)).length,
  get: (l, index: number) => l[position(l, index, "get")],
  set: (l, index: number, value) => void (l[position(l, index, "set")] = value),
  delete: (l, index: number) => void l.splice(position(l, index, "delete"), 1),
  size: (l) => l.length,
  reverse: (l) => void l.reverse(),
  clear: (l) => void (l.length = 0),
  toArray: (l) => l,
  slice: (l, start?: number, end?: number) => {
    for (const bound of [start, end]) {
      if (bound !== undefined && !Number.isInteger(bound)) {
        throw new TypeError(`list.slice: bounds must be integers, got ${String(bound)}`);
      }
    }
    // Python's l[a:b] and Array.prototype.slice agree: negative bounds count from the end, out of range clamps.
    return l.slice(start, end);
  },
};

const namespaceMethods: Methods<Record<string, unknown>> = {
  get: (ns, name: string) => {
    if (!Object.hasOwn(ns, name)) throw new Error(`'Namespace' object has no attribute '${name}'`);
    return ns[name];
  },
  set: (ns, name: string, value) => void (ns[name] = value),
  has: (ns, name: string) => Object.hasOwn(ns, name),
  delete: (ns, name: string) => {
    if (!Object.hasOwn(ns, name)) throw new Error(`'Namespace' object has no attribute '${name}'`);
    delete ns[name];
  },
  toObject: (ns) => ({ ...ns }),
};

const methodsOf: Record<Builtin, Methods<never>> = {
  dict: dictMethods,
  list: listMethods,
  Namespace: namespaceMethods,
};

function create(typeid: Builtin, init: unknown): unknown {
  if (typeid === "dict") return new Map(init as Iterable<[unknown, unknown]>);
  if (typeid === "list") return [...(init as Iterable<unknown>)];
  return Object.assign(Object.create(null), init);
}

/** One managed object, and how many handles on it are out. */
interface Referent {
  typeid: Typeid;
  value: unknown;
  handles: number;
  /** Whether it may hold proxies (reductions): its values then go out walked for them. */
  reduced: boolean;
  /** An object of a user's class: settles once its module is imported and the object made; calls wait for it. */
  making?: Promise<void>;
  /** Why that failed: every call on it rejects with this. */
  failed?: unknown;
  /** The class's name, for messages. */
  className?: string;
  /** The methods a proxy may call, when its registration or its class's `_exposed_` names them. */
  exposed?: string[];
  /** What its registration says of its methods and of the typeids their results become. */
  how?: How;
}

/** How a referent is named in messages: `dict`, or its class's name. */
function nameOf(referent: Referent): string {
  return referent.className ?? referent.typeid;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === "function";
}

/** What a registered typeid tells the server (Python's `register(exposed=, method_to_typeid=)`), as plain data. */
interface Registration {
  exposed?: string[];
  methodToTypeid?: Record<string, string>;
}

/** How the server makes and serves an object of a registered typeid, and the registrations its results may need. */
interface How extends Registration {
  /** `new` for a class, a plain call for a factory function. */
  construct: boolean;
  /** Every typeid registered on the manager's class: a method's result may become any of them. */
  types: Record<string, Registration>;
}

/** What CREATE carries for an object of a user's class: where the class is, its arguments, and its registration. */
type Recipe = [spec: TargetSpec, args: unknown[], how?: How];

/** The method a proxy asks for to learn which methods it may call (Python's `_exposed_`); no method has this name. */
const EXPOSED = "#exposed";

/** Makes an object of a user's class (or calls a registered factory) in the server, once its module is imported. */
function make(referent: Referent, [spec, args, how]: Recipe): void {
  referent.className = spec.name;
  referent.how = how;
  referent.making = (async () => {
    const exported = spec.module === undefined ? undefined : (await import(spec.module))[spec.name];
    if (typeof exported !== "function") {
      throw new TypeError(
        `the ${how?.construct === false ? "function" : "class"} ${spec.name} must be exported from ` +
          `${spec.module ?? "its module"}, so that the manager's server can import it`,
      );
    }
    let value = how?.construct === false
      ? (exported as (...args: unknown[]) => unknown)(...args)
      : new (exported as new (...args: unknown[]) => unknown)(...args);
    if (isThenable(value)) value = await value;
    referent.value = value;
    referent.exposed = how?.exposed ?? declaredExposed(value);
  })().catch((error) => void (referent.failed = error)).finally(() => (referent.making = undefined));
}

/** A class's (or an object's) own `_exposed_` list, as Python reads `obj._exposed_`. */
function declaredExposed(value: unknown): string[] | undefined {
  if (value === null || (typeof value !== "object" && typeof value !== "function")) return undefined;
  const declared = (value as { _exposed_?: unknown })._exposed_ ??
    (value as { constructor?: { _exposed_?: unknown } }).constructor?._exposed_;
  return Array.isArray(declared) ? declared.map(String) : undefined;
}

/** The methods a proxy of `referent` may call: those exposed, else every public method (Python's `public_methods`). */
function exposedOf(referent: Referent): string[] {
  if (referent.typeid !== "object") return Object.keys(methodsOf[referent.typeid]);
  if (referent.failed !== undefined) throw referent.failed;
  if (referent.exposed) return [...referent.exposed];
  const names = new Set<string>();
  for (let at = referent.value as object | null; at && at !== Object.prototype; at = Object.getPrototypeOf(at)) {
    for (const name of Object.getOwnPropertyNames(at)) {
      if (name.startsWith("_") || name === "constructor") continue;
      if (typeof (referent.value as Record<string, unknown>)[name] === "function") names.add(name);
    }
  }
  return [...names].sort();
}

/** The method `name` of an object of a user's class: an exposed one, else a public one, as Python's AutoProxy. */
function methodOf(referent: Referent, name: string): ((...args: unknown[]) => unknown) | undefined {
  if (referent.failed !== undefined) throw referent.failed;
  if (referent.exposed ? !referent.exposed.includes(name) : name.startsWith("_") || name === "constructor") {
    return undefined;
  }
  const method = (referent.value as Record<string, unknown>)[name];
  return typeof method === "function" ? (method as (...args: unknown[]) => unknown) : undefined;
}

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

/** What the server exposes on the manager's own port, to the process that started it. */
interface Control {
  ready(): boolean;
  numberOfObjects(): number;
  shutdown(): void;
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
      if (pollUntil(() => requests.hasData() || stopped(), SERVER_POLL_MS)) continue;
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

/**
 * comlink, loaded by the first `Manager()` or server: a child pays to load
 * it only if it runs one (it was a third of the library's load time on Deno).
 */
let Comlink: typeof ComlinkModule;

async function loadComlink(): Promise<void> {
  Comlink ??= await import("comlink");
}

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
  await loadComlink();
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

// ---- Callers ----------------------------------------------------------------

/** What a proxy is, wherever it goes: its manager's block, its object, its type (and class). */
interface ProxyState {
  address: string;
  id: number;
  typeid: Typeid;
  className?: string;
  /** The methods an AutoProxy offers, when its registration names them. */
  exposed?: string[];
}

/** The reduction kind of a proxy. */
const PROXY = "managers.proxy";

interface Pending {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * This process's connection to one manager: its side of the request ring,
 * its own answer ring, the calls waiting for answers, and the handles its
 * proxies hold. One per manager and process, made when the first proxy
 * arrives.
 */
class Session {
  readonly address: string;
  /** Undefined when the manager was gone when this process first heard of it, and after close(). */
  #memory?: ManagerMemory;
  #block?: SharedMemory;
  #answersBlock?: SharedMemory;
  #answers?: Ring;
  #requests?: Feeder;
  #pending = new Map<number, Pending>();
  #lastCall = 0;
  #reading = false;
  /** Handles held by this process's proxies, by object id. */
  #handles = new Map<number, number>();

  constructor(address: string) {
    this.address = address;
    try {
      this.#block = new SharedMemory({ name: address });
    } catch {
      return; // Unlinked at shutdown: every call says so.
    }
    this.#memory = managerMemory(this.#block, false);
    this.#requests = new Feeder(this.#memory.requests, 0);
    // close() flushes it, as long as the server is there to read.
    this.#requests.abandonAtExit = true;
  }

  /** This process's answer ring, made at its first call: a process that only passes proxies on needs none. */
  #answerRing(): Ring {
    if (this.#answers) return this.#answers;
    // Scoped: if this process is terminated, the block loses its name with it, and its memory once the server lets go.
    this.#answersBlock = createScoped(answersName(this.address, currentProcess().pid!), Ring.size(ANSWER_CAPACITY));
    return this.#answers = Ring.create(ANSWER_CAPACITY, this.#answersBlock.buf);
  }

  /** The server's pid, once it runs. */
  get serverPid(): number {
    return this.#memory ? Atomics.load(this.#memory.cells, SERVER_PID) : 0;
  }

  /** Why calls can no longer be answered, or `undefined` while the server serves. */
  stopReason(): string | undefined {
    if (!this.#memory || Atomics.load(this.#memory.cells, SHUTDOWN) === 1) return "the manager has been shut down";
    const pid = this.serverPid;
    if (pid !== 0 && hasEnded(pid)) return `the manager's server process (pid ${pid}) has ended`;
    return undefined;
  }

  /** Sends a request that needs no answer, after everything this process sent before. */
  post(op: Op, object: number, name: string = "", payload?: Uint8Array): void {
    if (this.stopReason()) return;
    void this.#requests!.post(request(op, currentProcess().pid!, 0, object, name, payload), Infinity, undefined);
  }

  /** A new object id, unique in the manager. */
  newId(): number {
    return Atomics.add(this.#memory!.cells, LAST_ID, 1) + 1;
  }

  /** Calls `method` on the object `object`; settles with the server's answer, or rejects once the server is gone. */
  call(object: number, typeid: Typeid, method: string, args: readonly unknown[]): Promise<unknown> {
    const reason = this.stopReason();
    if (reason) return Promise.reject(new Error(reason));
    const payload = pickle(args, `${typeid}.${method}() args`);
    const answers = this.#answerRing();
    const call = ++this.#lastCall;
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    this.#pending.set(call, { resolve, reject });
    void this.#requests!.post(request(CALL, currentProcess().pid!, call, object, method, payload), Infinity, undefined);
    if (Atomics.load(this.#memory!.cells, HOT) === 1) pollUntil(() => answers.hasData(), CALLER_POLL_MS);
    this.#settle();
    if (this.#pending.size && !this.#reading) void this.#read();
    return promise;
  }

  /** Settles the calls whose answers are in. */
  #settle(): void {
    // Closed while a wait was pending: the next look at stopReason() ends the calls.
    const answers = this.#answers;
    if (!answers) return;
    for (let bytes; (bytes = answers.receiveIfReady("a manager proxy"));) {
      const call = readInt(bytes, 0);
      const pending = this.#pending.get(call);
      // Absent when the call was failed already: the server died or the manager shut down.
      if (!pending) continue;
      this.#pending.delete(call);
      try {
        const value = unpickle(bytes.subarray(5));
        if (bytes[4] === ERROR) pending.reject(reviveError(value as ReducedError));
        else pending.resolve(value);
      } catch (error) {
        pending.reject(error as Error);
      }
    }
  }

  /** Waits for answers while calls are pending; the waits hold the program open, and end the calls once the server is gone. */
  async #read(): Promise<void> {
    this.#reading = true;
    try {
      while (this.#pending.size) {
        const reason = this.stopReason();
        if (reason) return this.fail(reason);
        await this.#answers!.run(this.#answers!.ready(), { timeout: WATCH_MS });
        this.#settle();
      }
    } finally {
      this.#reading = false;
    }
  }

  /** Rejects every pending call with `reason`. */
  fail(reason: string): void {
    for (const pending of this.#pending.values()) pending.reject(new Error(reason));
    this.#pending.clear();
  }

  /** A proxy of `object` now lives in this process. */
  hold(object: number): void {
    this.#handles.set(object, (this.#handles.get(object) ?? 0) + 1);
  }

  /** A proxy of `object` was garbage-collected: its handle goes back. */
  release(object: number): void {
    const left = (this.#handles.get(object) ?? 1) - 1;
    if (left) this.#handles.set(object, left);
    else this.#handles.delete(object);
    this.post(DECREF, object);
  }

  /** This process ends: its handles go back and its blocks are let go. Resolves once the server has been told. */
  bye(): Promise<void> {
    this.post(BYE, 0, "", pickle([...this.#handles], "the handles"));
    this.#handles.clear();
    return this.close();
  }

  /** Lets go of this process's blocks once what it sent is in the ring (or the server is gone). */
  async close(): Promise<void> {
    sessions.delete(this.address);
    if (!this.#block) return;
    while (this.#requests!.pending && !this.stopReason()) {
      await Promise.race([this.#requests!.flushed(), new Promise((resolve) => setTimeout(resolve, WATCH_MS))]);
    }
    if (this.#answersBlock) discard(this.#answersBlock);
    // Requests still waiting for room would be written into memory let go: the handle stays open instead.
    if (this.#requests!.pending === 0) this.#block.close();
    // Memory let go may become another block: from here on, this session only says that the manager is gone.
    this.#block = this.#memory = this.#answers = undefined;
  }
}

const sessions = new Map<string, Session>();

function sessionFor(address: string): Session {
  let session = sessions.get(address);
  if (!session) sessions.set(address, session = new Session(address));
  return session;
}

// As Python's finalizers at a child's exit: the server learns that this process's proxies are gone.
beforeChildExit(() => Promise.all([...sessions.values()].map((session) => session.bye())));

/** Each proxy's session and object. */
const handles = new WeakMap<BaseProxy, ProxyState & { session: Session }>();

// A proxy that is gone gives its handle back; the object is dropped once none is left.
const released = new FinalizationRegistry<{ session: Session; id: number }>(({ session, id }) => session.release(id));

/** A proxy of the object `state` names, holding a handle on it; `adopt` when the handle was counted as sent here. */
function connect(state: ProxyState, adopt: boolean): BaseProxy {
  const session = sessionFor(state.address);
  if (adopt) session.post(ADOPT, state.id);
  const base = new proxyTypes[state.typeid]();
  const proxy = state.typeid === "object" ? autoProxy(base, state.exposed) : base;
  const handle = { ...state, session };
  handles.set(base, handle);
  handles.set(proxy, handle);
  session.hold(state.id);
  released.register(proxy, { session, id: state.id });
  return proxy;
}

/**
 * Python's AutoProxy: each exposed method of the object in the server (by
 * default every public one) is a method of the proxy. `then` stays missing,
 * or awaiting a proxy would call it. A proxy that exposes `next` (of a
 * generator or an iterator in the server) is async-iterable.
 */
function autoProxy(base: BaseProxy, exposed: string[] | undefined): BaseProxy {
  const offers = (key: string) => key !== "then" && (exposed ? exposed.includes(key) : !key.startsWith("_"));
  return new Proxy(base, {
    get(target, key) {
      if (key === Symbol.asyncIterator && exposed?.includes("next")) {
        return () => ({ next: () => target.callMethod("next") });
      }
      if (typeof key !== "string" || key in target || !offers(key)) return Reflect.get(target, key, target);
      return (...args: unknown[]) => target.callMethod(key, args);
    },
    has(target, key) {
      if (key in target) return true;
      if (key === Symbol.asyncIterator) return exposed?.includes("next") ?? false;
      return typeof key === "string" && offers(key);
    },
  });
}

function handleOf(proxy: BaseProxy): ProxyState & { session: Session } {
  const found = handles.get(proxy);
  if (!found) throw new TypeError("not a manager proxy: get one from manager.dict(), list() or Namespace()");
  return found;
}

/**
 * What every manager proxy shares, as Python's `BaseProxy`: a connection to
 * one object in the manager's server, calls on it, and sending it to another
 * process (in `args`, or through a queue or pipe), where it reaches the same
 * object.
 *
 * @example
 * ```ts
 * import { Manager } from "@mp/multiprocessing";
 * await using manager = await Manager();
 * const d = manager.dict();
 * await d.callMethod("set", ["x", 1]);
 * console.log(await d.callMethod("get", ["x"])); // 1
 * ```
 */
export class BaseProxy {
  /**
   * Calls `method` on the managed object with `args`, as Python's
   * `_callmethod`. Rejects with the server's error, with a `TypeError` for
   * an unknown method or arguments that cannot be sent, and at once when
   * the manager was shut down or its server has ended.
   */
  async callMethod(method: string, args: readonly unknown[] = []): Promise<unknown> {
    const { session, id, typeid } = handleOf(this);
    return await session.call(id, typeid, method, args);
  }

  /**
   * The methods this proxy may call on its object, as Python's `_exposed_`:
   * those its registration or its class's `_exposed_` names, else every
   * public method, in sorted order.
   */
  exposedMethods(): Promise<string[]> {
    return this.callMethod(EXPOSED) as Promise<string[]>;
  }

  /**
   * Sends this proxy: its manager's name and its object's id, which any
   * process can connect with; the server counts the receiver's handle.
   *
   * @ignore
   */
  [reduce](): Reduction {
    const { session, address, id, typeid, className, exposed } = handleOf(this);
    session.post(INCREF, id);
    const state: ProxyState = { address, id, typeid, className, exposed };
    return { kind: PROXY, state };
  }

  /** Shows the type and the server, as Python's repr does. */
  toString(): string {
    const { session, typeid, className } = handleOf(this);
    const kind = className === undefined ? this.constructor.name : "AutoProxy";
    return `<${kind} '${className ?? typeid}' of the manager in pid ${session.serverPid}>`;
  }
}

/**
 * A proxy for a dict in the manager's server, from `manager.dict()`. Keys
 * keep their types (number 1 and string "1" are different keys), as in
 * Python.
 *
 * @example
 * ```ts
 * import { Manager } from "@mp/multiprocessing";
 * await using manager = await Manager();
 * const d = manager.dict<number | string, unknown>();
 * await d.set(1, "1");
 * await d.set("2", 2);
 * console.log(await d.toMap()); // Map(2) { 1 => "1", "2" => 2 }
 * ```
 */
export class DictProxy<K = unknown, V = unknown> extends BaseProxy {
  /** `d[key]`, or `fallback` (undefined) when the key is missing, as Python's `d.get(key, fallback)`. */
  get(key: K): Promise<V | undefined>;
  /** `d[key]`, or `fallback` when the key is missing. */
  get<F>(key: K, fallback: F): Promise<V | F>;
  get(key: K, fallback?: unknown): Promise<unknown> {
    return this.callMethod("get", [key, fallback]);
  }
  /** `d[key] = value`. */
  async set(key: K, value: V): Promise<void> {
    await this.callMethod("set", [key, value]);
  }
  /** `key in d`. */
  has(key: K): Promise<boolean> {
    return this.callMethod("has", [key]) as Promise<boolean>;
  }
  /** Removes `key`; whether it was there. */
  delete(key: K): Promise<boolean> {
    return this.callMethod("delete", [key]) as Promise<boolean>;
  }
  /** Removes `key` and returns its value, or `fallback`; rejects with a `RangeError` (Python's KeyError) without one. */
  pop(key: K, ...fallback: [V?]): Promise<V> {
    return this.callMethod("pop", [key, ...fallback]) as Promise<V>;
  }
  /** Python's `setdefault`: the value of `key`, set to `value` first if missing. */
  setDefault(key: K, value: V): Promise<V> {
    return this.callMethod("setDefault", [key, value]) as Promise<V>;
  }
  /** Sets every `[key, value]` pair. */
  async update(entries: Iterable<readonly [K, V]>): Promise<void> {
    await this.callMethod("update", [[...entries]]);
  }
  /** The keys, in insertion order. */
  keys(): Promise<K[]> {
    return this.callMethod("keys") as Promise<K[]>;
  }
  /** The values, in insertion order. */
  values(): Promise<V[]> {
    return this.callMethod("values") as Promise<V[]>;
  }
  /** The `[key, value]` pairs, in insertion order (Python's `items()`). */
  entries(): Promise<[K, V][]> {
    return this.callMethod("entries") as Promise<[K, V][]>;
  }
  /** `len(d)`. */
  size(): Promise<number> {
    return this.callMethod("size") as Promise<number>;
  }
  /** Removes every key. */
  async clear(): Promise<void> {
    await this.callMethod("clear");
  }
  /** A copy of the whole dict, as Python's `d.copy()`. */
  toMap(): Promise<Map<K, V>> {
    return this.callMethod("toMap") as Promise<Map<K, V>>;
  }
}

/**
 * A proxy for a list in the manager's server, from `manager.list()`.
 * Indexes may be negative, as in Python.
 *
 * @example
 * ```ts
 * import { Manager } from "@mp/multiprocessing";
 * await using manager = await Manager();
 * const l = manager.list([0, 1, 2]);
 * await l.append(3);
 * console.log(await l.toArray()); // [0, 1, 2, 3]
 * ```
 */
export class ListProxy<T = unknown> extends BaseProxy {
  /** Adds `value` at the end. */
  async append(value: T): Promise<void> {
    await this.callMethod("append", [value]);
  }
  /** Adds every value at the end. */
  async extend(values: Iterable<T>): Promise<void> {
    await this.callMethod("extend", [[...values]]);
  }
  /** Inserts `value` before `index`. */
  async insert(index: number, value: T): Promise<void> {
    await this.callMethod("insert", [index, value]);
  }
  /** Removes and returns the item at `index` (the last by default); a `RangeError` when out of range. */
  pop(index: number = -1): Promise<T> {
    return this.callMethod("pop", [index]) as Promise<T>;
  }
  /** Removes the first item equal to `value`; rejects when there is none. */
  async remove(value: T): Promise<void> {
    await this.callMethod("remove", [value]);
  }
  /** The index of the first item equal to `value`; rejects when there is none. */
  index(value: T): Promise<number> {
    return this.callMethod("index", [value]) as Promise<number>;
  }
  /** How many items equal `value`. */
  count(value: T): Promise<number> {
    return this.callMethod("count", [value]) as Promise<number>;
  }
  /** `l[index]`; a `RangeError` when out of range. */
  get(index: number): Promise<T> {
    return this.callMethod("get", [index]) as Promise<T>;
  }
  /** `l[index] = value`; a `RangeError` when out of range. */
  async set(index: number, value: T): Promise<void> {
    await this.callMethod("set", [index, value]);
  }
  /** `del l[index]`. */
  async delete(index: number): Promise<void> {
    await this.callMethod("delete", [index]);
  }
  /** `len(l)`. */
  size(): Promise<number> {
    return this.callMethod("size") as Promise<number>;
  }
  /** Reverses the list in place. */
  async reverse(): Promise<void> {
    await this.callMethod("reverse");
  }
  /** Removes every item. */
  async clear(): Promise<void> {
    await this.callMethod("clear");
  }
  /** A copy of the whole list, as Python's `l[:]`. */
  toArray(): Promise<T[]> {
    return this.callMethod("toArray") as Promise<T[]>;
  }
  /** The items from `start` up to, not including, `end`, as Python's `l[start:end]` (negative counts from the end). */
  slice(start?: number, end?: number): Promise<T[]> {
    return this.callMethod("slice", [start, end]) as Promise<T[]>;
  }
}

/**
 * A proxy for a namespace in the manager's server, from
 * `manager.Namespace()`: Python's `ns.x` becomes `await ns.get("x")`.
 *
 * @example
 * ```ts
 * import { Manager } from "@mp/multiprocessing";
 * await using manager = await Manager();
 * const ns = manager.Namespace({ x: 1 });
 * await ns.set("y", "two");
 * console.log(await ns.toObject()); // { x: 1, y: "two" }
 * ```
 */
export class NamespaceProxy<T extends Record<string, unknown> = Record<string, unknown>> extends BaseProxy {
  /** `ns.name`; rejects when it is not set (Python's AttributeError). */
  get<N extends keyof T & string>(name: N): Promise<T[N]> {
    return this.callMethod("get", [name]) as Promise<T[N]>;
  }
  /** `ns.name = value`. */
  async set<N extends keyof T & string>(name: N, value: T[N]): Promise<void> {
    await this.callMethod("set", [name, value]);
  }
  /** `hasattr(ns, name)`. */
  has(name: string): Promise<boolean> {
    return this.callMethod("has", [name]) as Promise<boolean>;
  }
  /** `del ns.name`; rejects when it is not set. */
  async delete(name: keyof T & string): Promise<void> {
    await this.callMethod("delete", [name]);
  }
  /** A copy of every attribute. */
  toObject(): Promise<Partial<T>> {
    return this.callMethod("toObject") as Promise<Partial<T>>;
  }
}

/**
 * The proxy of an object of your class, from `manager.create(cls)`: Python's
 * AutoProxy. Each public method of `T` is here, async; the rest of
 * {@linkcode BaseProxy} too.
 *
 * @example
 * ```ts
 * import { type AutoProxy, Manager } from "@mp/multiprocessing";
 *
 * export class Greeter {
 *   greet(name: string): string {
 *     return `hello ${name}`;
 *   }
 * }
 *
 * if (import.meta.main) {
 *   await using manager = await Manager();
 *   const greeter: AutoProxy<Greeter> = manager.create(Greeter);
 *   console.log(await greeter.greet("bob")); // hello bob
 * }
 * ```
 */
export type AutoProxy<T> =
  & BaseProxy
  & {
    readonly [K in keyof T as K extends `_${string}` ? never : T[K] extends (...args: never[]) => unknown ? K : never]:
      T[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never;
  };

const proxyTypes: Record<Typeid, typeof BaseProxy> = {
  object: BaseProxy,
  dict: DictProxy,
  list: ListProxy,
  Namespace: NamespaceProxy,
};

registerKind(PROXY, (state) => connect(state as ProxyState, true));

// ---- The manager ------------------------------------------------------------

/** Options of {@linkcode SyncManager.register}, as Python's `register(typeid, callable, ...)` keywords. */
export interface RegisterOptions {
  /** The methods a proxy may call (Python's `exposed`); by default the class's `_exposed_`, else every public one. */
  exposed?: readonly string[];
  /** Methods whose results become objects of another registered typeid, returned as proxies (`method_to_typeid`). */
  methodToTypeid?: Record<string, string>;
  /** Whether managers get a method named `typeid` that makes one (Python's `create_method`, true by default). */
  createMethod?: boolean;
  /** The module that exports `callable`, when it is not the module that calls `register`. */
  module?: string | URL;
}

/** A typeid's registration, in the process that registered it. */
interface Registered extends Registration {
  spec?: TargetSpec;
  construct: boolean;
}

/** Where a manager class keeps its registrations: its own table, copied from its parent's at its first register. */
const registries = Symbol("registries");
type Registrar = { [registries]?: Map<string, Registered> };

/** How long `shutdown()` lets the server end by itself before it is terminated. */
const SHUTDOWN_GRACE_MS = 1_000;

/**
 * A running manager, from {@linkcode Manager}: it creates managed objects
 * and hands out their proxies, and `shutdown()` (or `await using`) stops its
 * server. Python's `SyncManager`.
 *
 * @example
 * ```ts
 * import { Manager } from "@mp/multiprocessing";
 * await using manager = await Manager();
 * const ns = manager.Namespace();
 * await ns.set("ready", true);
 * ```
 */
export class SyncManager {
  #process?: Process;
  #block!: SharedMemory;
  #cells!: Int32Array;
  #session?: Session;
  #port!: MessagePort;
  #control!: ComlinkModule.Remote<Control>;
  #starting?: Promise<void>;
  #shutDown = false;

  /**
   * Registers `typeid` on this manager class, as Python's
   * `BaseManager.register`: `callable` (a class, or a function that returns
   * the object) makes the objects in the server, and each manager of the
   * class gets a method `typeid(...args)` that makes one there and returns
   * its AutoProxy (unless `createMethod` is false). `exposed` names the
   * methods a proxy may call (by default the class's `_exposed_`, else every
   * public method); `methodToTypeid` maps a method to the registered typeid
   * its result becomes, so that it returns a proxy instead of a copy. The
   * callable must be exported from its module: the module that calls
   * `register`, or `options.module`. Declare the methods on the class with
   * an interface of the same name for types.
   *
   * @throws {TypeError} for a typeid that is not a name, or a callable that is not a function.
   *
   * @example
   * ```ts
   * import { type AutoProxy, SyncManager } from "@mp/multiprocessing";
   *
   * export class Maths {
   *   add(x: number, y: number): number {
   *     return x + y;
   *   }
   * }
   *
   * export class MyManager extends SyncManager {}
   * export interface MyManager {
   *   Maths(): AutoProxy<Maths>;
   * }
   * MyManager.register("Maths", Maths);
   *
   * if (import.meta.main) {
   *   await using manager = await new MyManager().start();
   *   console.log(await manager.Maths().add(4, 3)); // 7
   * }
   * ```
   */
  static register(
    typeid: string,
    // deno-lint-ignore no-explicit-any
    callable?: ((...args: any[]) => unknown) | (new (...args: any[]) => unknown),
    options: RegisterOptions = {},
  ): void {
    if (typeof typeid !== "string" || !/^[A-Za-z_$][\w$]*$/.test(typeid)) {
      throw new TypeError(`${this.name}.register: typeid must be a name, got ${String(typeid)}`);
    }
    const { exposed, methodToTypeid, createMethod = true } = options;
    if (exposed !== undefined && (!Array.isArray(exposed) || exposed.some((name) => typeof name !== "string"))) {
      throw new TypeError(`${this.name}.register('${typeid}'): exposed must be a list of method names`);
    }
    if (callable !== undefined && typeof callable !== "function") {
      throw new TypeError(`${this.name}.register('${typeid}'): callable must be a class or a function`);
    }
    if (callable === undefined && createMethod) {
      throw new TypeError(
        `${this.name}.register('${typeid}'): give the callable that makes its objects, or createMethod: false`,
      );
    }
    const module = options.module?.toString() ?? callerModule();
    const entry: Registered = {
      spec: callable && describeTarget(callable, module, `${this.name}.register('${typeid}')`),
      construct: callable !== undefined && /^class\b/.test(Function.prototype.toString.call(callable)),
      // A class's own `_exposed_` is known here too, so that its proxies offer those methods.
      exposed: exposed ? [...exposed] : declaredExposed(callable?.prototype),
      methodToTypeid: methodToTypeid && { ...methodToTypeid },
    };
    if (!Object.hasOwn(this, registries)) {
      Object.defineProperty(this, registries, { value: new Map((this as Registrar)[registries] ?? []) });
    }
    (this as Registrar)[registries]!.set(typeid, entry);
    if (createMethod) {
      Object.defineProperty(this.prototype, typeid, {
        configurable: true,
        writable: true,
        value(this: SyncManager, ...args: unknown[]): BaseProxy {
          return this.#createRegistered(typeid, args);
        },
      });
    }
  }

  /** A manager that is not started yet: `await manager.start()` starts its server (`Manager()` does both). */
  constructor() {}

  /**
   * Starts the server process, as Python's `BaseManager.start()`; resolves
   * to the manager once it serves. Starting twice returns the same start.
   *
   * @example
   * ```ts
   * import { SyncManager } from "@mp/multiprocessing";
   * const manager = await new SyncManager().start();
   * await manager.shutdown();
   * ```
   */
  async start(): Promise<this> {
    this.#starting ??= this.#start();
    await this.#starting;
    return this;
  }

  async #start(): Promise<void> {
    if (this.#shutDown) throw new Error("manager.start(): the manager has been shut down");
    await loadComlink();
    const block = new SharedMemory({ create: true, size: BLOCK_SIZE });
    const { cells } = managerMemory(block, true);
    const { port1, port2 } = new MessageChannel();
    // A daemon, reached through an unref'd port: a manager that was never shut down does not hold the program open
    // (except on Deno, whose Web Workers cannot be unref'd).
    const process = new Process({
      target: managerServer,
      module: import.meta.url,
      args: [new PortCarrier(port2), block.name],
      daemon: true,
    });
    process.name = process.name.replace("Process", "SyncManager");
    process.start();
    Atomics.store(cells, SERVER_PID, process.pid!);
    this.#process = process;
    this.#block = block;
    this.#cells = cells;
    this.#session = sessionFor(block.name);
    this.#port = port1;
    this.#control = Comlink.wrap<Control>(port1);
    unref(port1);
    try {
      await this.ready();
    } catch (error) {
      await this.shutdown();
      throw error;
    }
  }

  /** The session, once started; why not otherwise. */
  #started(what: string): Session {
    if (!this.#session) throw new Error(`${what}: the manager is not started; await manager.start() first`);
    return this.#session;
  }

  /** An object of the registered `typeid`, made in the server, and its proxy. */
  #createRegistered(typeid: string, args: unknown[]): BaseProxy {
    const table = (this.constructor as Registrar)[registries];
    const entry = table?.get(typeid);
    if (!entry?.spec) throw new TypeError(`manager.${typeid}(): ${typeid} has no callable registered`);
    const types: Record<string, Registration> = {};
    for (const [name, { exposed, methodToTypeid }] of table!) types[name] = { exposed, methodToTypeid };
    const how: How = {
      construct: entry.construct,
      types,
      exposed: entry.exposed,
      methodToTypeid: entry.methodToTypeid,
    };
    const recipe: Recipe = [{ module: entry.spec.module, name: entry.spec.name }, args, how];
    return this.#create("object", recipe, `manager.${typeid}() args`, typeid, entry.exposed);
  }

  /** Waits until the server answers; rejects if it ends first. */
  async ready(): Promise<void> {
    this.#started("manager.ready()");
    await this.#ask(this.#control.ready());
  }

  /** A control request's answer; rejects if the server ends first. */
  async #ask<T>(answer: Promise<T>): Promise<T> {
    // The control port is unref'd: a wait on it must hold the program open by itself.
    const alive = setInterval(() => {}, 60_000);
    try {
      const ended = Symbol("ended");
      const outcome = await Promise.race([answer, whenEnded(this.#process!).then(() => ended)]);
      if (outcome === ended) throw new Error(`the manager's server process (pid ${this.#process!.pid}) has ended`);
      return outcome as T;
    } finally {
      clearInterval(alive);
    }
  }

  /** The server process, as Python's `manager._process`. */
  get process(): Process {
    if (!this.#process) throw new Error("manager.process: the manager is not started; await manager.start() first");
    return this.#process;
  }

  #create(typeid: Typeid, init: unknown, what: string, className?: string, exposed?: string[]): BaseProxy {
    const method = className === undefined ? typeid : what.slice("manager.".length, what.indexOf("("));
    const session = this.#started(`manager.${method}()`);
    const reason = session.stopReason();
    if (reason) throw new Error(`manager.${method}(): ${reason}`);
    const payload = pickle(init, what);
    const id = session.newId();
    // Ahead of anything sent on the proxy, in the same ring: it can be used (and sent on) at once.
    session.post(CREATE, id, typeid, payload);
    return connect({ address: this.#block.name, id, typeid, className, exposed }, false);
  }

  /**
   * A new object of your class `cls`, made with `args` and kept in the
   * manager's server, and its proxy: Python's `BaseManager.register(typeid,
   * callable)` followed by `manager.typeid(*args)`. Each public method of the
   * class (not starting with `_`) is an async method of the proxy, which
   * travels as any proxy does. The class must be exported from its module:
   * the module that calls `create`, or `options.module`. If the server cannot
   * make the object, each call on the proxy rejects with the reason.
   *
   * @throws {TypeError} when an argument cannot be sent, naming it.
   *
   * @example
   * ```ts
   * import { Manager } from "@mp/multiprocessing";
   *
   * export class Counter {
   *   #n = 0;
   *   add(k: number): number {
   *     return this.#n += k;
   *   }
   * }
   *
   * if (import.meta.main) {
   *   await using manager = await Manager();
   *   const counter = manager.create(Counter);
   *   console.log(await counter.add(2)); // 2
   * }
   * ```
   */
  create<T extends object, A extends unknown[] = []>(
    cls: new (...args: A) => T,
    args?: A,
    options: { module?: string | URL } = {},
  ): AutoProxy<T> {
    const module = options.module?.toString() ?? callerModule();
    const spec = describeTarget(cls, module, "manager.create");
    const recipe: Recipe = [{ module: spec.module, name: spec.name }, args ?? []];
    return this.#create("object", recipe, `manager.create(${spec.name}) args`, spec.name) as AutoProxy<T>;
  }

  /** A new managed dict, optionally filled from `[key, value]` pairs. */
  dict<K = unknown, V = unknown>(entries: Iterable<readonly [K, V]> = []): DictProxy<K, V> {
    return this.#create("dict", [...entries], "manager.dict() initial value") as DictProxy<K, V>;
  }

  /** A new managed list, optionally filled from `items` (Python's `manager.list(range(5))`). */
  list<T = unknown>(items: Iterable<T> = []): ListProxy<T> {
    return this.#create("list", [...items], "manager.list() initial value") as ListProxy<T>;
  }

  /** A new managed namespace with the attributes of `attributes`. */
  Namespace<T extends Record<string, unknown> = Record<string, unknown>>(
    attributes: Partial<T> = {},
  ): NamespaceProxy<T> {
    return this.#create("Namespace", { ...attributes }, "manager.Namespace() initial value") as NamespaceProxy<T>;
  }

  /**
   * How many objects the server keeps: Python's `_number_of_objects()`, to
   * see that released proxies let their objects go.
   */
  async numberOfObjects(): Promise<number> {
    const reason = this.#started("manager.numberOfObjects()").stopReason();
    if (reason) throw new Error(`manager.numberOfObjects(): ${reason}`);
    return await this.#ask(this.#control.numberOfObjects());
  }

  /** A {@linkcode Lock} shared by every process it is sent to. */
  Lock(): Lock {
    return new Lock();
  }

  /** An {@linkcode RLock} shared by every process it is sent to. */
  RLock(): RLock {
    return new RLock();
  }

  /** A {@linkcode Semaphore} starting at `value`. */
  Semaphore(value: number = 1): Semaphore {
    return new Semaphore(value);
  }

  /** A {@linkcode BoundedSemaphore} starting at, and bounded by, `value`. */
  BoundedSemaphore(value: number = 1): BoundedSemaphore {
    return new BoundedSemaphore(value);
  }

  /** A {@linkcode Condition} on `lock` (a new RLock by default). */
  Condition(lock?: SemLock): Condition {
    return new Condition(lock);
  }

  /** An {@linkcode Event}. */
  Event(): Event {
    return new Event();
  }

  /** A {@linkcode Barrier} for `parties` processes. */
  Barrier(parties: number, options: BarrierOptions = {}): Barrier {
    return new Barrier(parties, options);
  }

  /** A {@linkcode Queue} holding at most `maxsize` items (0: unbounded). */
  Queue<T = unknown>(maxsize: number = 0): Queue<T> {
    return new Queue<T>(maxsize);
  }

  /** A {@linkcode JoinableQueue} holding at most `maxsize` items (0: unbounded). */
  JoinableQueue<T = unknown>(maxsize: number = 0): JoinableQueue<T> {
    return new JoinableQueue<T>(maxsize);
  }

  /** A shared {@linkcode Value} of `typecode`. */
  Value<T extends Typecode>(typecode: T, value?: ItemOf<T>): Value<T> {
    return new Value(typecode, value);
  }

  /** A {@linkcode SharedArray} of `typecode`, of `size` zeros or of the given values. */
  Array<T extends Typecode>(typecode: T, sizeOrValues: number | Iterable<ItemOf<T>>): SharedArray<T> {
    return new SharedArray(typecode, sizeOrValues);
  }

  /**
   * Stops the server. Every proxy of this manager, in any process, then
   * rejects its calls at once, pending ones included. Calling it again does
   * nothing.
   */
  async shutdown(): Promise<void> {
    // The cells are not read again: once the block is let go, its memory may be another block's.
    if (this.#shutDown) return;
    this.#shutDown = true;
    // Never started: nothing to stop.
    if (!this.#session || !this.#process) return;
    Atomics.store(this.#cells, SHUTDOWN, 1);
    this.#session.fail("the manager has been shut down");
    info("sending shutdown message to manager");
    this.#control.shutdown().catch(() => {});
    await this.#process.join(SHUTDOWN_GRACE_MS);
    if (this.#process.isAlive()) {
      this.#process.terminate();
      await this.#process.join();
    }
    this.#port.close();
    await this.#session.close();
    discard(this.#block);
  }

  /** `await using manager = await Manager()` shuts the manager down at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }
}

/**
 * Starts a manager: a server process that keeps shared dicts, lists and
 * namespaces, reached through proxies that can be sent to other processes.
 *
 * @example
 * ```ts
 * import { type DictProxy, type ListProxy, Manager, Process } from "@mp/multiprocessing";
 *
 * export async function f(d: DictProxy<number | string, unknown>, l: ListProxy<number>) {
 *   await d.set(1, "1");
 *   await l.append(42);
 * }
 *
 * if (import.meta.main) {
 *   await using manager = await Manager();
 *   const d = manager.dict();
 *   const l = manager.list([0, 1]);
 *   const p = new Process({ target: f, args: [d, l] });
 *   p.start();
 *   await p.join();
 *   console.log(await l.toArray()); // [0, 1, 42]
 * }
 * ```
 */
export function Manager(): Promise<SyncManager> {
  return new SyncManager().start();
}
