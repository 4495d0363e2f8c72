/**
 * The manager: `SyncManager` starts the server process, makes managed
 * objects (each CREATE goes into the request ring ahead of any call on the
 * proxy, so a proxy is usable at once), registers the user's typeids
 * (Python's `BaseManager.register`), hands out the library's own shared
 * primitives for Lock, Queue, Value and the rest (they already work across
 * processes, with no round trip per call), and shuts the server down.
 *
 * @module
 */
import type * as ComlinkModule from "comlink";
import { Barrier, type BarrierOptions } from "../barrier.ts";
import { Condition } from "../condition.ts";
import { Event } from "../event.ts";
import { BoundedSemaphore, Lock, RLock, Semaphore, type SemLock } from "../locks.ts";
import { info } from "../logging.ts";
import { pickle } from "../pickle.ts";
import { PortCarrier, unref } from "../ports.ts";
import { type Process, whenEnded } from "../process.ts";
import { JoinableQueue, Queue } from "../queues.ts";
import { SharedMemory } from "../shared_memory.ts";
import { type ItemOf, SharedArray, type Typecode, Value } from "../sharedctypes.ts";
import { callerModule, describeTarget, type TargetSpec } from "../spawn.ts";
import { classTable, inheritedTable, ManagerBase, type ManagerContext } from "./base.ts";
import { BLOCK_SIZE, discard, managerMemory, SERVER_PID, SHUTDOWN } from "./memory.ts";
import {
  type AutoProxy,
  type BaseProxy,
  connect,
  type DictProxy,
  type ListProxy,
  type NamespaceProxy,
} from "./proxies.ts";
import { declaredExposed } from "./referents.ts";
import { managerServer, serverModule } from "./server.ts";
import { type Session, sessionFor } from "./session.ts";
import { type Control, CREATE, type How, loadComlink, type Recipe, type Registration, type Typeid } from "./wire.ts";

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

/** Each manager class's registrations, by typeid. */
const registries = new WeakMap<object, Map<string, Registered>>();

/** Options of {@linkcode SyncManager}'s constructor, as Python's `SyncManager(ctx=None)`. */
export interface SyncManagerOptions {
  /** The context whose start method starts the server process (`getContext("spawn")`); the default's otherwise. */
  context?: ManagerContext;
}

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
export class SyncManager extends ManagerBase {
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
    classTable(registries, this).set(typeid, entry);
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

  /**
   * A manager that is not started yet: `await manager.start()` starts its
   * server (`Manager()` does both). `options.context`: the context whose
   * `Process` starts the server, as Python's `SyncManager(ctx=)` (what
   * `getContext(method).Manager()` passes); by default the start method in
   * use.
   */
  constructor(options: SyncManagerOptions = {}) {
    if (options === null || typeof options !== "object") {
      throw new TypeError(`new ${new.target.name}: options must be an object`);
    }
    super(options.context);
  }

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
    const Comlink = await loadComlink();
    const block = new SharedMemory({ create: true, size: BLOCK_SIZE });
    const { cells } = managerMemory(block, true);
    const { port1, port2 } = new MessageChannel();
    // A daemon, reached through an unref'd port: a manager that was never shut down does not hold the program open
    // (except on Deno, whose Web Workers cannot be unref'd).
    const process = this.serverProcess(managerServer, serverModule, [new PortCarrier(port2), block.name]);
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
    const table = inheritedTable(registries, this.constructor);
    const entry = table.get(typeid);
    if (!entry?.spec) throw new TypeError(`manager.${typeid}(): ${typeid} has no callable registered`);
    const types: Record<string, Registration> = {};
    for (const [name, { exposed, methodToTypeid }] of table) types[name] = { exposed, methodToTypeid };
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
    return connect(session, { address: this.#block.name, id, typeid, className, exposed }, false);
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
    await this.stopServer(this.#process);
    this.#port.close();
    await this.#session.close();
    discard(this.#block);
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
