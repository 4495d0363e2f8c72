/**
 * Python's `BaseManager` and `SyncManager` over sockets: a manager serves
 * its registry on an address (`start()` in a worker process, or
 * `getServer().serveForever()` in this program), and any process on any
 * host that knows the address and key `connect()`s to it. The server and
 * the client may each be a Python program (see protocol.ts).
 *
 * @module
 */
import { Pipe } from "../../connection.ts";
import { ProcessError } from "../../errors.ts";
import { currentProcess, type Process, whenEnded } from "../../process.ts";
import { callerModule, describeTarget, resolveTarget, type TargetSpec } from "../../spawn.ts";
import { classTable, inheritedTable, ManagerBase, type ManagerContext } from "../base.ts";
import { ManagerClient } from "./client.ts";
import { type Address, describe, mayHoldProxies, Token, walk } from "./protocol.ts";
import type { RemoteAutoProxy } from "./proxies.ts";
import { pickledProxy, proxiesMade } from "./proxy_handles.ts";
import { makeProxy, setClientSource } from "./proxy_types.ts";
import { type Maker, type RegisterOptions, type Registration, registration, syncRegistry } from "./registry.ts";
import { Server } from "./server.ts";
import { dial, listen } from "./transport.ts";

/** How a manager is made: where it serves or what it connects to, and the key both ends share. */
export interface ManagerOptions {
  /**
   * `[host, port]` (port 0: any free port, `manager.address` says which) or
   * a Unix socket path. Needed by `connect()`; `start()` and `getServer()`
   * default to a free loopback port.
   */
  address?: Address;
  /** The shared key: bytes, or a string taken as UTF-8. Default: `currentProcess().authkey`. */
  authkey?: Uint8Array | string;
  /** The context whose start method starts `start()`'s server process (Python's `ctx=`); the default's otherwise. */
  context?: ManagerContext;
}

function readKey(authkey: Uint8Array | string | undefined): Uint8Array {
  if (authkey === undefined) return currentProcess().authkey;
  if (typeof authkey === "string") return new TextEncoder().encode(authkey);
  if (authkey instanceof Uint8Array) return authkey.slice();
  throw new TypeError(`authkey must be a Uint8Array or a string, got ${typeof authkey}`);
}

function readAddress(address: unknown, what: string): Address | undefined {
  if (address === undefined) return undefined;
  if (typeof address === "string" && address !== "") return address;
  if (
    Array.isArray(address) && address.length === 2 && typeof address[0] === "string" &&
    Number.isInteger(address[1]) && address[1] >= 0 && address[1] < 65_536
  ) return [address[0], address[1]];
  throw new TypeError(`${what}: address must be [host, port] or a socket path, got ${describe(address)}`);
}

/** The clients of this process, one per manager address and key: proxies of one manager share connections. */
const clients = new Map<string, ManagerClient>();

function clientFor(address: Address, authkey: Uint8Array): ManagerClient {
  const key = `${JSON.stringify(address)}|${Array.from(authkey).join(",")}`;
  let client = clients.get(key);
  if (!client) {
    client = new ManagerClient(address, authkey, dial, proxyFromWire, toWire);
    clients.set(key, client);
  }
  return client;
}

setClientSource(clientFor);

/** A proxy that came in a reply: of this client's manager, or of another one it names. */
function proxyFromWire(
  client: ManagerClient,
  token: Token,
  exposed: string[] | undefined,
  proxytype: string | undefined,
  owned: boolean,
): unknown {
  const same = JSON.stringify(token.address) === JSON.stringify(client.address);
  const owner = same ? client : clientFor(token.address, client.authkey);
  return makeProxy(owner, token, exposed, proxytype ?? "AutoProxy", owned);
}

/** A value going out: a proxy becomes its Python pickle. */
function toWire(value: unknown): unknown {
  return (value !== null && typeof value === "object" && pickledProxy(value)) || value;
}

/** A registration as a worker gets it: where its callable is exported. */
interface RegistrationSpec {
  typeid: string;
  callable?: TargetSpec;
  options: RegisterOptions;
}

const registries = new WeakMap<object, Map<string, Registration>>();
/** Where each class registered its callables from: the worker imports them from there. */
const registeredFrom = new WeakMap<Registration, string | undefined>();

/** A class's registry: a subclass starts from a copy of its parent's, as Python's `register` copies `_registry`. */
function registryOf(cls: object): Map<string, Registration> {
  return classTable(registries, cls);
}

function addRegistration(
  registry: Map<string, Registration>,
  typeid: string,
  callable: Maker | undefined,
  options: RegisterOptions,
  module: string | undefined,
): Registration {
  const entry = registration(typeid, callable, options);
  registry.set(typeid, entry);
  registeredFrom.set(entry, module);
  return entry;
}

/** Gives a manager class the builtin typeids (SyncManager's): the worker makes them itself, nothing is imported. */
export function registerBuiltins(cls: typeof BaseManager, entries: readonly Registration[]): void {
  const registry = registryOf(cls);
  for (const entry of entries) registry.set(entry.typeid, entry);
}

type State = "initial" | "started" | "shutdown";

/**
 * Python's `BaseManager`: a registry of typeids and a server or a
 * connection to one. `register` a typeid with the callable that makes its
 * objects (on the serving side) or without one (on a connecting side), then
 * `start()`, `getServer()` or `connect()`, and `create(typeid, ...args)`
 * (or the method named after the typeid) returns a proxy at once.
 *
 * @example
 * ```ts
 * import { BaseManager } from "@mp/multiprocessing/managers";
 *
 * // The docs' "Using a remote manager": connect to a server (Python or ours) that serves get_queue.
 * const manager = new BaseManager({ address: ["127.0.0.1", 50000], authkey: "abracadabra" });
 * manager.register("get_queue");
 * await manager.connect();
 * const queue = manager.create("get_queue");
 * await queue.put("hello");
 * ```
 */
export class BaseManager extends ManagerBase {
  /**
   * Registers `typeid` for every manager of this class (and its
   * subclasses): Python's `BaseManager.register` classmethod. A
   * `createMethod` adds a method named `typeid` (when the name is free).
   */
  static register(typeid: string, callable?: Maker, options: RegisterOptions = {}): void {
    const entry = addRegistration(registryOf(this), typeid, callable, options, callerModule());
    if (entry.createMethod && !(typeid in this.prototype)) {
      Object.defineProperty(this.prototype, typeid, {
        value: function (this: BaseManager, ...args: unknown[]) {
          return this.create(typeid, ...args);
        },
        configurable: true,
        writable: true,
      });
    }
  }

  #registry: Map<string, Registration>;
  #address?: Address;
  readonly #authkey: Uint8Array;
  #state: State = "initial";
  #server?: Server;
  #process?: Process;
  #client?: ManagerClient;

  /** A manager of `options.address`, not yet serving nor connected. */
  constructor(options: ManagerOptions = {}) {
    if (options === null || typeof options !== "object") {
      throw new TypeError("new BaseManager: options must be an object");
    }
    super(options.context);
    this.#address = readAddress(options.address, "new BaseManager");
    this.#authkey = readKey(options.authkey);
    this.#registry = new Map(inheritedTable(registries, new.target));
  }

  /** Registers `typeid` for this manager only; returns it, to chain. */
  register(typeid: string, callable?: Maker, options: RegisterOptions = {}): this {
    addRegistration(this.#registry, typeid, callable, options, callerModule());
    return this;
  }

  /** The address it serves on or connects to; after `start()`/`getServer()` with port 0, the port picked. */
  get address(): Address | undefined {
    return this.#address;
  }

  #checkInitial(what: string): void {
    if (this.#state === "started") throw new ProcessError(`${what}: the manager was already started or connected`);
    if (this.#state === "shutdown") throw new ProcessError(`${what}: the manager has shut down`);
  }

  /**
   * A server of this manager's registry on its address, in this program:
   * `await server.serveForever()` serves until it is shut down (by
   * `server.shutdown()` or a client's `shutdown` request). Python's
   * `get_server()`.
   *
   * @throws {ProcessError} when the manager was started or connected.
   */
  async getServer(): Promise<Server> {
    this.#checkInitial("getServer()");
    const { acceptor, address } = await listen(this.#address ?? ["127.0.0.1", 0], this.#authkey);
    this.#address = address;
    return new Server(acceptor, address, this.#registry);
  }

  /**
   * Connects to the server at `address` (ours or Python's), checking the key:
   * Python's `connect()`. Rejects with `AuthenticationError` for a wrong key
   * and with an error naming the address when nothing serves there.
   */
  async connect(): Promise<void> {
    this.#checkInitial("connect()");
    if (this.#address === undefined) throw new TypeError("connect(): the manager has no address to connect to");
    const client = clientFor(this.#address, this.#authkey);
    await client.serverCall("dummy");
    this.#client = client;
    this.#state = "started";
  }

  /**
   * Starts a server process (a worker) serving this manager's registry, and
   * connects to it. The registered callables must be exported from the
   * module that registered them, so that the worker can import them.
   */
  async start(): Promise<void> {
    this.#checkInitial("start()");
    const specs: RegistrationSpec[] = [...this.#registry.values()].map((entry) => ({
      typeid: entry.typeid,
      callable: entry.callable === undefined || syncRegistry.includes(entry)
        ? undefined
        : describeTarget(entry.callable, registeredFrom.get(entry), `register('${entry.typeid}')`),
      options: {
        proxytype: entry.proxytype,
        exposed: entry.exposed,
        methodToTypeid: entry.methodToTypeid,
        createMethod: entry.createMethod,
      },
    }));
    const builtins = [...this.#registry.values()].filter((entry) => syncRegistry.includes(entry)).map((e) => e.typeid);
    const [reader, writer] = Pipe<unknown>(false);
    const process = this.serverProcess(serveManager, import.meta.url, [
      this.#address ?? ["127.0.0.1", 0],
      this.#authkey,
      specs,
      builtins,
      writer,
    ]);
    process.start();
    const ended = whenEnded(process).then(() => {
      throw new ProcessError(`the manager's server process ${process.name} ended before it served`);
    });
    const reported = await Promise.race([reader.recv(), ended]) as { address?: Address; error?: string };
    reader.close();
    if (reported.error !== undefined) {
      await process.join();
      throw new ProcessError(`the manager's server could not start: ${reported.error}`);
    }
    this.#address = reported.address!;
    this.#process = process;
    this.#client = clientFor(this.#address, this.#authkey);
    this.#state = "started";
  }

  /** The server process that `start()` started (Python's `manager._process`). */
  get process(): Process | undefined {
    return this.#process;
  }

  #connected(what: string): ManagerClient {
    if (this.#state === "shutdown") throw new ProcessError(`${what}: the manager has shut down`);
    if (!this.#client) throw new ProcessError(`${what}: start() or connect() the manager first`);
    return this.#client;
  }

  /**
   * A new object of `typeid` in the server, made with `args`, and its proxy,
   * returned at once (as the in-program manager's): Python's
   * `manager.typeid(*args)`. If the server cannot make it, every call on the
   * proxy rejects with the reason.
   */
  // deno-lint-ignore no-explicit-any
  create<P = RemoteAutoProxy<any>>(typeid: string, ...args: unknown[]): P {
    const client = this.#connected(`create('${typeid}')`);
    const entry = this.#registry.get(typeid);
    // A proxy among the arguments is pickled with its id: it waits for its own create() first.
    const created = proxiesMade(args).then(() =>
      client.serverCall("create", [typeid, ...args.map((arg) => mayHoldProxies(arg) ? walk(arg, toWire) : arg)])
    ) as Promise<[string, string[]]>;
    const ident = created.then(([id]) => String(id));
    const token = new Token(typeid, client.address, "");
    return makeProxy(client, token, entry?.exposed, entry?.proxytype ?? "AutoProxy", true, ident) as P;
  }

  /** How many objects the server keeps (Python's `_number_of_objects()`). */
  async numberOfObjects(): Promise<number> {
    return await this.#connected("numberOfObjects()").serverCall("number_of_objects") as number;
  }

  /** The server's refcounts, one line per object (Python's `_debug_info()`). */
  async debugInfo(): Promise<string> {
    return await this.#connected("debugInfo()").serverCall("debug_info") as string;
  }

  /**
   * Stops a server that `start()` started (asking it, then terminating it
   * after a second), or closes this process's connections to a server it
   * connected to (whose references are then released by our server). A
   * second call does nothing.
   */
  async shutdown(): Promise<void> {
    if (this.#state === "shutdown") return;
    const wasStarted = this.#state === "started";
    this.#state = "shutdown";
    if (this.#process) {
      try {
        if (wasStarted) await this.#client!.serverCall("shutdown");
      } catch {
        // Gone already.
      }
      await this.stopServer(this.#process);
    }
    if (this.#client) {
      this.#client.close();
      for (const [key, client] of clients) if (client === this.#client) clients.delete(key);
    }
  }
}

/**
 * The server process of `manager.start()`: serves the registry on
 * `address` and reports the address (or why it could not) on `report`. Not
 * for direct use.
 *
 * @example
 * ```ts
 * import { SyncManager } from "@mp/multiprocessing/managers";
 * const manager = new SyncManager();
 * await manager.start(); // a worker runs serveManager
 * await manager.shutdown();
 * ```
 */
export async function serveManager(
  address: Address,
  authkey: Uint8Array,
  specs: RegistrationSpec[],
  builtins: string[],
  report: { send(value: unknown): unknown; close(): void },
): Promise<void> {
  let server: Server;
  try {
    const registry = new Map<string, Registration>();
    for (const entry of syncRegistry) if (builtins.includes(entry.typeid)) registry.set(entry.typeid, entry);
    for (const spec of specs) {
      if (builtins.includes(spec.typeid)) continue;
      const callable = spec.callable && await resolveTarget(spec.callable);
      registry.set(spec.typeid, registration(spec.typeid, callable as Maker | undefined, spec.options));
    }
    const { acceptor, address: bound } = await listen(address, authkey);
    server = new Server(acceptor, bound, registry);
    await report.send({ address: bound });
  } catch (error) {
    await report.send({ error: (error as Error).message ?? String(error) });
    report.close();
    return;
  }
  report.close();
  await server.serveForever();
}
