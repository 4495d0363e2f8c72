/**
 * A process's side of one remote manager: the connections its proxies call
 * through, and the references they hold.
 *
 * Python opens one connection per thread and proxy address; a program here
 * has one thread but many calls in flight, so it keeps a pool: a call takes
 * an idle connection or opens one (the handshake, then
 * `accept_connection(name)`), and gives it back when answered. The calls
 * of dicts, lists and namespaces, which never wait in the server, share one
 * connection instead, queued behind each other (`#pipelined`). A call that
 * waits in the server (a queue's `get`) so holds one connection, and the
 * others go on. Aborting a call closes its connection: the server then ends
 * the wait.
 *
 * References: with one of our servers the client takes a lease (one
 * connection kept open) and makes its increfs and decrefs on it, so the
 * server releases them if this process dies. A Python server refuses
 * `lease`; then each incref and decref opens a connection, as Python's own
 * proxies do.
 *
 * @module
 */
import { dumps, loads } from "../../python/pickle.ts";
import { EOFError } from "../../errors.ts";
import { currentProcess } from "../../process.ts";
import {
  type Address,
  describe,
  mayHoldProxies,
  readProxy,
  readToken,
  RemoteError,
  request,
  reviveException,
  type Token,
  walk,
} from "./protocol.ts";
import type { Channel } from "./server.ts";

/** Opens an authenticated connection to `address`. */
export type Dial = (address: Address, authkey: Uint8Array) => Promise<Channel>;

/**
 * What a client makes of a proxy it receives (see proxy_types.ts). `owned`: the
 * server counted a reference for it already (a `#PROXY` reply); otherwise
 * the proxy increfs its object itself.
 */
export type ProxyMaker = (
  client: ManagerClient,
  token: Token,
  exposed: string[] | undefined,
  proxytype: string | undefined,
  owned: boolean,
) => unknown;

/** Reads a reply; throws the error it carries. `proxy` turns a `#PROXY` reply into a proxy. */
export function readReply(message: unknown, proxy: (exposed: string[], token: Token) => unknown): unknown {
  if (!Array.isArray(message) || message.length !== 2 || typeof message[0] !== "string") {
    throw new RemoteError(`the manager sent no reply but ${describe(message)}`);
  }
  const [kind, value] = message;
  switch (kind) {
    case "#RETURN":
      return value;
    case "#ERROR":
      throw reviveException(value);
    case "#TRACEBACK":
      throw new RemoteError(String(value));
    case "#UNSERIALIZABLE":
      throw new RemoteError(`Unserializable message: ${String(value)}`);
    case "#PROXY": {
      const [exposed, pickled] = Array.isArray(value) ? value : [];
      const token = readToken(pickled);
      if (!token) throw new RemoteError(`the manager sent a #PROXY reply without a token: ${describe(value)}`);
      return proxy(Array.isArray(exposed) ? exposed.map(String) : [], token);
    }
  }
  throw new RemoteError(`Unrecognized message type ${describe(kind)}`);
}

/** Arguments as pickle carries them: `undefined` has no Python counterpart, so it travels as `None`. */
function plain(args: readonly unknown[]): unknown[] {
  let end = args.length;
  while (end > 0 && args[end - 1] === undefined) end--;
  return args.slice(0, end).map((arg) => arg === undefined ? null : arg);
}

/**
 * One process's connections to one manager (by address and key). Not for
 * direct use: managers and proxies make them.
 */
export class ManagerClient {
  readonly address: Address;
  readonly authkey: Uint8Array;
  #dial: Dial;
  #makeProxy: ProxyMaker;
  /** Turns values going out (proxies) into what pickle carries. */
  #reduce: (value: unknown) => unknown;
  #idle: Channel[] = [];
  /** The connection that pipelined calls share (see {@linkcode #pipelined}). */
  #pipe?: Promise<Channel>;
  #open = new Set<Channel>();
  /** The lease connection, `null` for a server that has none (Python's), undefined until asked. */
  #lease?: Promise<Channel | null>;
  /** Requests on the lease go one at a time: each waits for the one before. */
  #leaseTurn: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** The lease's number, which this client's call connections name, so that what they acquire is the lease's. */
  #leaseId?: number;

  constructor(
    address: Address,
    authkey: Uint8Array,
    dial: Dial,
    makeProxy: ProxyMaker,
    reduce: (value: unknown) => unknown,
  ) {
    this.address = address;
    this.authkey = authkey;
    this.#dial = dial;
    this.#makeProxy = makeProxy;
    this.#reduce = reduce;
  }

  /** Opens a connection (tracked, so that `close()` closes it). */
  async #connect(): Promise<Channel> {
    if (this.#closed) throw new Error("the manager connection has been closed");
    const channel = await this.#dial(this.address, this.authkey);
    this.#open.add(channel);
    return channel;
  }

  #drop(channel: Channel): void {
    this.#open.delete(channel);
    channel.close();
  }

  /** One request and its reply on `channel`. */
  async #exchange(channel: Channel, message: unknown): Promise<unknown> {
    await channel.sendBytes(dumps(message));
    return loads(await channel.recvBytes());
  }

  /** A server method on a fresh connection, closed after (Python's `dispatch(Client(...), None, method, args)`). */
  async #once(method: string, args: readonly unknown[]): Promise<unknown> {
    const channel = await this.#connect();
    try {
      return this.#revive(await this.#exchange(channel, request(null, method, plain(args))));
    } finally {
      this.#drop(channel);
    }
  }

  /** The lease connection, taken at the first server method: `null` when the server does not lease (Python's). */
  #leaseChannel(): Promise<Channel | null> {
    this.#lease ??= (async () => {
      const channel = await this.#connect();
      const [kind, id] = await this.#exchange(channel, request(null, "lease")) as [string, number];
      if (kind === "#RETURN") {
        this.#leaseId = id;
        return channel;
      }
      this.#drop(channel);
      return null;
    })();
    return this.#lease;
  }

  /** Calls a server method (`create`, `incref`, `decref`, `number_of_objects`…), on the lease when there is one. */
  async serverCall(method: string, args: readonly unknown[] = []): Promise<unknown> {
    const lease = await this.#leaseChannel();
    if (!lease || method === "shutdown") return await this.#once(method, args);
    const turn = this.#leaseTurn.then(() => this.#exchange(lease, request(null, method, plain(args))));
    this.#leaseTurn = turn.catch(() => {});
    return this.#revive(await turn);
  }

  /** Whether this client's references die with its lease (our server) rather than staying counted (Python's). */
  async leased(): Promise<boolean> {
    return (await this.#leaseChannel()) !== null;
  }

  /**
   * Calls `method` on the object `ident` (on `pinned`, a connection from `takeChannel`, when given); rejects
   * with its error. Aborting closes the connection the call waits on.
   */
  async call(
    ident: string,
    method: string,
    args: readonly unknown[],
    signal?: AbortSignal,
    pipelined = false,
    pinned?: Channel,
  ): Promise<unknown> {
    signal?.throwIfAborted();
    const outgoing = plain(args).map((arg) => mayHoldProxies(arg) ? walk(arg, this.#reduce) : arg);
    const bytes = dumps(request(ident, method, outgoing));
    if (pipelined && !signal) return this.#revive(await this.#pipelined(bytes, method));
    const channel = pinned ?? this.#idle.pop() ?? await this.#acceptedChannel();
    let message: unknown;
    if (signal) {
      const aborted = Promise.withResolvers<never>();
      const abort = () => {
        this.#drop(channel);
        aborted.reject(signal.reason);
      };
      signal.addEventListener("abort", abort, { once: true });
      try {
        message = await Promise.race([this.#send(channel, bytes, method), aborted.promise]);
      } finally {
        signal.removeEventListener("abort", abort);
      }
    } else {
      message = await this.#send(channel, bytes, method);
    }
    if (!pinned) this.giveBack(channel);
    return this.#revive(message);
  }

  /**
   * A call connection for one caller alone, until `giveBack`: `call(…, pinned)` goes on it. A held RLock's or
   * Condition's calls go on the connection that acquired it, which owns it in the server as a thread does in
   * Python's (see `RemoteLockProxy`).
   */
  async takeChannel(): Promise<Channel> {
    return this.#idle.pop() ?? await this.#acceptedChannel();
  }

  /** Gives a call connection back to the idle ones (unless it was closed meanwhile). */
  giveBack(channel: Channel): void {
    if (!this.#closed && this.#open.has(channel)) this.#idle.push(channel);
  }

  /**
   * A call on the shared connection of calls that never wait in the server
   * (a dict's, a list's): sent at once, behind the others in flight there,
   * and answered in order, as a server (Python's too) serves one connection.
   * Concurrent callers then share each write and read: measured with 8
   * callers of dict set+get pairs (load 4–8, 2 cores), from 17k to 26k
   * pairs/s on Node, 14k to 24k on Deno, 12k to 25k on Bun, and the
   * client's CPU per pair from 30 to 19 µs on Node, the floor of a bare
   * node:net echo with a connection per caller (bench/remote_managers.ts).
   * A dict of a user's class that waits in `__getitem__` would hold up the
   * calls behind it: only the container proxies pipeline.
   */
  async #pipelined(bytes: Uint8Array, method: string): Promise<unknown> {
    const pipe = this.#pipe ??= this.#acceptedChannel();
    let channel: Channel;
    try {
      channel = await pipe;
    } catch (error) {
      if (this.#pipe === pipe) this.#pipe = undefined;
      throw error;
    }
    try {
      return await this.#send(channel, bytes, method);
    } finally {
      // A broken pipe was dropped by #send: the next call opens another.
      if (this.#pipe === pipe && !this.#open.has(channel)) this.#pipe = undefined;
    }
  }

  async #send(channel: Channel, bytes: Uint8Array, method: string): Promise<unknown> {
    try {
      // The reply is awaited, not the write's callback (one event-loop turn on Deno and Bun): a send that
      // fails breaks the socket, which fails the receive.
      void Promise.resolve(channel.sendBytes(bytes)).catch(() => {});
      return loads(await channel.recvBytes());
    } catch (error) {
      this.#drop(channel);
      // The server ended (or cut this connection) while the call waited: Python's EOFError, saying which call.
      if (error instanceof EOFError) {
        throw new EOFError(`the manager at ${describe(this.address)} closed the connection during ${method}()`, {
          cause: error,
        });
      }
      throw error;
    }
  }

  /** A new connection for method calls: the handshake, then `accept_connection(name)`. */
  async #acceptedChannel(): Promise<Channel> {
    await this.#leaseChannel();
    const name = currentProcess().name + (this.#leaseId === undefined ? "" : `|lease:${this.#leaseId}`);
    const channel = await this.#connect();
    try {
      readReply(await this.#exchange(channel, request(null, "accept_connection", [name])), () => null);
    } catch (error) {
      this.#drop(channel);
      throw error;
    }
    return channel;
  }

  /** A reply's value, with the proxies in it made proxies. */
  #revive(message: unknown): unknown {
    const value = readReply(message, (exposed, token) => {
      // As Python's: the token's address is the one this client reached the server at.
      token.address = this.address;
      return this.#makeProxy(this, token, exposed, undefined, true);
    });
    if (!mayHoldProxies(value)) return value;
    return walk(value, (item) => {
      const proxy = readProxy(item);
      if (!proxy) return item;
      const proxytype = (item as { args: { name?: string }[] }).args[0]?.name;
      return this.#makeProxy(this, proxy.token, proxy.exposed, proxytype, false);
    });
  }

  /** Closes every connection; calls in flight reject. The lease's end releases this client's references. */
  close(): void {
    this.#closed = true;
    for (const channel of this.#open) channel.close();
    this.#open.clear();
    this.#idle = [];
    this.#pipe = undefined;
  }
}
