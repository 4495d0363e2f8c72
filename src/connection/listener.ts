/**
 * `Listener` and `Client` of Python's `multiprocessing.connection`, on
 * `node:net` (the same module on Deno, Bun and Node): TCP addresses
 * `[host, port]` and Unix socket paths, with CPython's authkey handshake
 * when a key is given, so either side may be a Python program.
 *
 * @module
 */
import { mkdtempSync, rmSync, unlinkSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { TimeoutError } from "../errors.ts";
import { answerChallenge, type Authkey, deliverChallenge, keyBytes } from "./handshake.ts";
import { adopt, handshaken, type SocketConnection } from "./socket.ts";

/** A TCP address `[host, port]` (port 0: any free port) or a Unix socket path. */
export type Address = [host: string, port: number] | string;

/** Python's address families: `"AF_INET"` (TCP, IPv4 or IPv6 host) or `"AF_UNIX"` (a socket path). */
export type Family = "AF_INET" | "AF_UNIX";

/** Options of {@linkcode Listener}. */
export interface ListenerOptions {
  /** The family when no address is given: `"AF_UNIX"` by default (a private socket path), as Python's. */
  family?: Family;
  /** The operating system's queue of connections not yet taken (default 16, as Python's manager server). */
  backlog?: number;
  /** When given, every accepted connection must pass the handshake with this key (bytes, or a UTF-8 string). */
  authkey?: Authkey;
  /** The longest message a connection accepts, in bytes (default 32 MiB). */
  maxMessageBytes?: number;
  /** How long a connecting peer may take over the handshake, in ms (default 20 000, Python's CONNECTION_TIMEOUT). */
  handshakeTimeout?: number;
}

/** Options of {@linkcode Client}. */
export interface ClientOptions {
  /** Must match the address when given. */
  family?: Family;
  /** The key the listener expects (bytes, or a UTF-8 string). */
  authkey?: Authkey;
  /** How long connecting and the handshake may take, in ms (default 20 000). */
  timeout?: number;
  /** The longest message this connection accepts, in bytes (default 32 MiB). */
  maxMessageBytes?: number;
}

const CONNECTION_TIMEOUT = 20_000;

/** The address in errors: `host:port` or the path. */
function show(address: Address): string {
  return typeof address === "string"
    ? address
    : address[0].includes(":")
    ? `[${address[0]}]:${address[1]}`
    : `${address[0]}:${address[1]}`;
}

/** Checks an address and says its family. */
function familyOf(address: unknown, family: Family | undefined, what: string): Family {
  let found: Family;
  if (typeof address === "string") {
    if (address === "") throw new TypeError(`${what}: a Unix socket path must not be empty`);
    found = "AF_UNIX";
  } else if (
    Array.isArray(address) && address.length === 2 && typeof address[0] === "string" &&
    Number.isInteger(address[1]) && address[1] >= 0 && address[1] <= 65535
  ) found = "AF_INET";
  else {
    throw new TypeError(
      `${what}: an address is [host, port] (port an integer 0-65535) or a socket path, got ${JSON.stringify(address)}`,
    );
  }
  if (family !== undefined && family !== found) {
    throw new TypeError(`${what}: the address ${show(address as Address)} is not of family ${family}`);
  }
  return found;
}

function timeoutOf(value: number | undefined, name: string, what: string): number {
  if (value === undefined) return CONNECTION_TIMEOUT;
  if (typeof value !== "number" || Number.isNaN(value) || value < 0) {
    throw new RangeError(`${what}: ${name} must be a number of milliseconds >= 0, got ${String(value)}`);
  }
  return value;
}

/** What the common socket errors mean, in the same words on every runtime (their own messages differ). */
const MEANING: Record<string, string> = {
  EADDRINUSE: "address already in use",
  EADDRNOTAVAIL: "the address is not one of this host's",
  EACCES: "permission denied",
  ECONNREFUSED: "connection refused: nothing listens there",
  ECONNRESET: "the peer reset the connection",
  ENOENT: "no such socket path",
  ENOTSOCK: "the path is no socket",
  EHOSTUNREACH: "the host is unreachable",
  ENETUNREACH: "the network is unreachable",
  ETIMEDOUT: "the connection timed out",
};

function reason(error: Error): string {
  const code = (error as { code?: string }).code;
  if (code && MEANING[code]) return `${code} (${MEANING[code]})`;
  return code && !error.message.includes(code) ? `${code} ${error.message}` : error.message;
}

/** How a connection's handshake ended: the connection and its peer's address, or why it failed. */
type Outcome = { conn: SocketConnection<unknown>; peer: Address } | { error: Error };

/** Runs `step` (the handshake) within `ms`; on time-out the socket is destroyed and the step fails. */
async function bounded<T>(step: Promise<T>, ms: number, socket: Socket, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      socket.destroy();
      reject(new TimeoutError(`${what}: no handshake within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([step, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A bound, listening socket: Python's `multiprocessing.connection.Listener`.
 * It binds at once; `await listener.listening` settles when it listens
 * (and rejects with an error naming the address when it cannot), after
 * which `address` holds the real port of a port-0 address. `accept()` waits
 * for that itself. Without an address it listens on a private Unix socket
 * in a new temporary folder; a TCP listener binds `127.0.0.1` unless told
 * another host.
 *
 * @example
 * ```ts
 * import { Listener } from "@mp/multiprocessing/connection";
 * await using listener = new Listener(["127.0.0.1", 0], { authkey: "secret password" });
 * await listener.listening;
 * console.log("listening on", listener.address);
 * const conn = await listener.accept();
 * console.log(await conn.recv());
 * conn.close();
 * ```
 */
export class Listener {
  readonly #server: Server;
  readonly #key?: Uint8Array;
  readonly #maxMessageBytes?: number;
  readonly #handshakeTimeout: number;
  readonly #listening: Promise<void>;
  /** The private folder of a Listener made without an address, removed by `close()`. */
  readonly #folder?: string;
  #address: Address;
  #family: Family;
  #lastAccepted: Address | null = null;
  /** Connected sockets no accept() has asked for yet: paused, unread, their handshake not begun. */
  #pending: Socket[] = [];
  /** Sockets whose handshake runs now. */
  #handshaking = new Set<Socket>();
  /** Handshakes that ended while no accept() waited, in the order they ended. */
  #outcomes: Outcome[] = [];
  #waiters: { resolve: (conn: SocketConnection<unknown>) => void; reject: (error: Error) => void }[] = [];
  #closed = false;
  #failure?: Error;

  /**
   * Binds `address` (default: a private Unix socket path, or `["127.0.0.1", 0]` with `family: "AF_INET"`).
   *
   * @throws {TypeError} for an address that is neither `[host, port]` nor a path, or a bad key.
   */
  constructor(address?: Address, options: ListenerOptions = {}) {
    if (address === undefined || address === null) {
      if ((options.family ?? "AF_UNIX") === "AF_UNIX") {
        this.#folder = mkdtempSync(join(tmpdir(), "mp-"));
        address = join(this.#folder, `sock-${randomBytes(6).toString("hex")}`);
      } else address = ["127.0.0.1", 0];
    }
    this.#family = familyOf(address, options.family, "Listener");
    this.#address = typeof address === "string" ? address : [address[0], address[1]];
    if (options.authkey !== undefined) this.#key = keyBytes(options.authkey, "Listener");
    this.#maxMessageBytes = options.maxMessageBytes;
    this.#handshakeTimeout = timeoutOf(options.handshakeTimeout, "handshakeTimeout", "Listener");
    const backlog = options.backlog ?? 16;
    if (!Number.isInteger(backlog) || backlog < 0) {
      throw new RangeError(`Listener: backlog must be an integer >= 0, got ${backlog}`);
    }
    const server = createServer({ pauseOnConnect: true });
    this.#server = server;
    server.on("connection", (socket: Socket) => this.#arrived(socket));
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#listening = promise;
    // Observed here so that nobody awaiting it is no unhandled rejection; accept() reports it.
    promise.catch(() => {});
    server.once("error", (error: Error) => {
      const exists = this.#family === "AF_UNIX" && (error as { code?: string }).code === "EADDRINUSE";
      this.#failure = new Error(
        `Listener: cannot listen on ${show(this.#address)}: ${reason(error)}` +
          (exists ? " (the path exists: remove it if no program listens there)" : ""),
        { cause: error },
      );
      this.#closed = true;
      this.#failAll(this.#failure);
      reject(this.#failure);
    });
    server.once("listening", () => {
      const bound = server.address();
      if (bound && typeof bound === "object") this.#address = [bound.address, bound.port];
      resolve();
    });
    const target = this.#address;
    if (typeof target === "string") server.listen({ path: target, backlog });
    else server.listen({ host: target[0], port: target[1], backlog });
    // Like a Python listener, it holds the program open only while an accept() waits.
    server.unref();
  }

  /** Settles once the listener listens; rejects with an error naming the address when it cannot. */
  get listening(): Promise<void> {
    return this.#listening;
  }

  /** The bound address: `[host, port]` (the real port once `listening` settled) or the socket path. */
  get address(): Address {
    return typeof this.#address === "string" ? this.#address : [...this.#address];
  }

  /** The address family. */
  get family(): Family {
    return this.#family;
  }

  /** The peer address of the last accepted connection (`[host, port]`; `""` for a Unix socket peer), or null. */
  get lastAccepted(): Address | null {
    return this.#lastAccepted;
  }

  /** Whether `close()` was called (or listening failed). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Waits for the next connection and, with an authkey, runs the handshake
   * (deliver the challenge, then answer the peer's, as Python's). The
   * handshakes of every connection waiting run at once, each within
   * `handshakeTimeout`, and accept() gives the first that ended: a peer that
   * is slow or silent in its handshake holds up nobody behind it (Python's
   * accept() would wait for it). A handshake that ended while no accept()
   * waited is given to the next one, success or failure, in the order they ended.
   *
   * @throws {AuthenticationError} when the peer fails the handshake; the listener goes on.
   * @throws {TimeoutError} when the peer does not finish the handshake within `handshakeTimeout`.
   * @throws {Error} when the listener is closed or could not listen.
   */
  async accept<T = unknown>(): Promise<SocketConnection<T>> {
    this.#checkOpen();
    await this.#listening;
    this.#checkOpen();
    const ended = this.#outcomes.shift();
    if (ended) return this.#handOut(ended) as SocketConnection<T>;
    const { promise, resolve, reject } = Promise.withResolvers<SocketConnection<unknown>>();
    this.#waiters.push({ resolve, reject });
    this.#server.ref();
    // Every connection that waits starts its handshake now; those arriving while this waits start on arrival.
    for (const socket of this.#pending.splice(0)) this.#begin(socket);
    return promise as Promise<SocketConnection<T>>;
  }

  /** Stops listening, fails waiting `accept()`s, and removes a Unix socket path it bound. */
  close(): void {
    if (this.#closed && !this.#failure) return;
    this.#closed = true;
    this.#failAll(new Error(`Listener.accept: the listener on ${show(this.#address)} is closed`));
    if (this.#server.listening) this.#server.close();
    if (typeof this.#address === "string" && !this.#failure) {
      try {
        unlinkSync(this.#address);
      } catch { /* already gone: some runtimes unlink on close */ }
    }
    if (this.#folder) rmSync(this.#folder, { recursive: true, force: true });
  }

  /** `await using listener = …`: closes it. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  #arrived(socket: Socket): void {
    if (this.#closed) return void socket.destroy();
    if (this.#waiters.length > 0) return this.#begin(socket);
    // Accepted sockets wait, paused and unread, for accept(); a peer that leaves meanwhile is dropped.
    socket.on("error", () => {});
    socket.once("close", () => {
      this.#pending = this.#pending.filter((s) => s !== socket);
    });
    socket.unref();
    this.#pending.push(socket);
  }

  /** Makes the connection over `socket` and runs its handshake (when there is a key); the outcome goes to `#ended`. */
  #begin(socket: Socket): void {
    const remote = socket.remoteAddress;
    const peer: Address = remote ? [remote, socket.remotePort ?? 0] : "";
    const conn = adopt(socket, {
      peer: typeof peer === "string" ? `a peer on ${show(this.#address)}` : show(peer),
      maxMessageBytes: this.#maxMessageBytes,
    });
    const key = this.#key;
    if (!key) return this.#ended({ conn, peer });
    this.#handshaking.add(socket);
    bounded(
      deliverChallenge(conn, key).then(() => answerChallenge(conn, key)),
      this.#handshakeTimeout,
      socket,
      `Listener.accept on ${show(this.#address)}`,
    ).then(
      (ours) => {
        handshaken(conn, ours);
        this.#ended({ conn, peer });
      },
      (error: Error) => {
        socket.destroy();
        this.#ended({ error });
      },
    ).finally(() => this.#handshaking.delete(socket));
  }

  /** A handshake ended: the oldest waiting accept() gets it, or it waits for the next accept(). */
  #ended(outcome: Outcome): void {
    if (this.#closed) {
      if ("conn" in outcome) outcome.conn.close();
      return;
    }
    const waiter = this.#waiters.shift();
    if (this.#waiters.length === 0) this.#server.unref();
    if (!waiter) {
      this.#outcomes.push(outcome);
      return;
    }
    try {
      waiter.resolve(this.#handOut(outcome));
    } catch (error) {
      waiter.reject(error as Error);
    }
  }

  /** The connection of an outcome (noting its peer as `lastAccepted`), or its error thrown. */
  #handOut(outcome: Outcome): SocketConnection<unknown> {
    if ("error" in outcome) throw outcome.error;
    this.#lastAccepted = outcome.peer;
    return outcome.conn;
  }

  #failAll(error: Error): void {
    for (const socket of [...this.#pending, ...this.#handshaking]) socket.destroy();
    this.#pending = [];
    this.#handshaking.clear();
    for (const outcome of this.#outcomes.splice(0)) if ("conn" in outcome) outcome.conn.close();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.reject(error);
    this.#server.unref();
  }

  #checkOpen(): void {
    if (this.#failure) throw this.#failure;
    if (this.#closed) throw new Error(`Listener.accept: the listener on ${show(this.#address)} is closed`);
  }
}

/**
 * Connects to the `Listener` at `address` (Python's or ours) and, with an
 * authkey, runs the handshake (answer the listener's challenge, then
 * deliver one): Python's `multiprocessing.connection.Client`.
 *
 * @throws {Error} naming the address when nothing listens there or it is unreachable.
 * @throws {TimeoutError} when connecting and the handshake take longer than `timeout`.
 * @throws {AuthenticationError} when the keys differ.
 *
 * @example
 * ```ts
 * import { Client } from "@mp/multiprocessing/connection";
 * const conn = await Client(["127.0.0.1", 6000], { authkey: "secret password" });
 * await conn.send({ hello: "from TypeScript" });
 * conn.close();
 * ```
 */
export async function Client<T = unknown>(address: Address, options: ClientOptions = {}): Promise<SocketConnection<T>> {
  familyOf(address, options.family, "Client");
  const key = options.authkey === undefined ? undefined : keyBytes(options.authkey, "Client");
  const timeout = timeoutOf(options.timeout, "timeout", "Client");
  const socket = typeof address === "string"
    ? connect({ path: address })
    : connect({ host: address[0], port: address[1] });
  const what = `Client: connecting to ${show(address)}`;
  await bounded(
    new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", (error: Error) => reject(new Error(`${what} failed: ${reason(error)}`, { cause: error })));
    }),
    timeout,
    socket,
    what,
  ).catch((error) => {
    socket.destroy();
    throw error instanceof TimeoutError ? new TimeoutError(`${what}: no connection within ${timeout} ms`) : error;
  });
  socket.removeAllListeners("error");
  socket.pause();
  const conn = adopt<T>(socket, { peer: show(address), maxMessageBytes: options.maxMessageBytes });
  if (key) {
    try {
      const ours = await bounded(
        answerChallenge(conn, key).then((ours) => deliverChallenge(conn, key).then(() => ours)),
        timeout,
        socket,
        what,
      );
      handshaken(conn, ours);
    } catch (error) {
      socket.destroy();
      throw error;
    }
  }
  return conn;
}
