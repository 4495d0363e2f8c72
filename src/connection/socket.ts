/**
 * A `Connection` over a stream socket (TCP or Unix), with CPython's framing
 * (`frames.ts`): what `Listener.accept()` and `Client()` give. It has a Pipe
 * end's surface; `send`/`recv` carry Python pickle (`../python/`), so the
 * peer may be a Python program; to a peer known to be one of ours
 * (`peers.ts`), what pickle cannot carry exactly goes in the library's own
 * encoding (`encoding.ts`), as on a Pipe.
 *
 * The socket is read as data comes, into whole messages; reading pauses
 * while more than {@linkcode READ_AHEAD} bytes of messages wait unread, so a
 * fast sender fills the kernel's buffers, not our memory. What is sent goes
 * out once per turn of the event loop (`outbox.ts`). The socket keeps
 * the program alive only while a call waits on it, as a blocked Python call would.
 *
 * @module
 */
import type { Socket } from "node:net";
import { EOFError } from "../errors.ts";
import { loads, PickleError } from "../python/pickle.ts";
import { framedPickle } from "../python/dump.ts";
import { receiveBytes, receiveBytesInto, sentBytes } from "../recv_bytes.ts";
import { readWait, type WaitOptions, within } from "../wait.ts";
import { decodeOurs, encodeOurs } from "./encoding.ts";
import { type FrameError, FrameReader } from "./frames.ts";
import { Outbox } from "./outbox.ts";
import { OURS as OURS_TAG, SIGNATURE, signedMessage } from "./peers.ts";

/** Unread bytes of whole messages beyond which the socket stops being read until some are received. */
export const READ_AHEAD = 4 * 1024 * 1024;

/**
 * How long `close()` waits for the peer to take what is still unsent before
 * it destroys the socket, re-armed each time one of the pending writes went
 * whole: a peer that stopped reading (writing to us too, both sides' buffers
 * full) cannot hold the closing side, its pending sends, or the program.
 * Python's close() never waits: its blocking send_bytes left nothing in the
 * program. Ours may hold unsent bytes that the kernel cannot take over.
 * Progress is seen per write only: the runtimes' sockets count a write, and
 * the writes queued behind it (sent as one writev), as unsent until their last
 * byte went (measured: writableLength stood still for 2.4 s of the 3.4 s a
 * slow reader took over 12 MiB, on Node, Deno and Bun alike). 3 s lets a
 * reader of 1 MiB/s take a few MiB past the kernel's buffers; a program that
 * must not lose a large message to a slow peer awaits its send before
 * close(), as Python's send blocks.
 */
export const CLOSE_GRACE_MS = 3000;

/** The default longest message a connection accepts: far below memory, far above any handshake or plain value. */
export const DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024;

/** What makes a socket connection. */
export interface SocketConnectionOptions {
  /** How to name the peer in errors, e.g. `127.0.0.1:5000` or a socket path. */
  peer: string;
  /** The longest message accepted; a longer one closes the connection with an error. */
  maxMessageBytes?: number;
}

type Waiter = () => void;
type Taker = { resolve: (bytes: Uint8Array) => void; reject: (error: Error) => void };

/** What the peer reads: unknown yet, Python's pickle only, or also our own encoding. */
type PeerKind = "unknown" | "pickle" | "ours";

/** Set while `accept()`/`Client()` make a connection, so that `new SocketConnection()` alone is refused. */
let adopting: { socket: Socket; options: SocketConnectionOptions } | undefined;

/** Makes the connection over `socket`; for `listener.ts` only. */
export function adopt<T>(socket: Socket, options: SocketConnectionOptions): SocketConnection<T> {
  adopting = { socket, options };
  return new SocketConnection<T>();
}

let learn: (conn: SocketConnection<unknown>, ours: boolean) => void;
let sendGiven: (conn: SocketConnection<unknown>, body: Uint8Array) => Promise<void>;
let receiveRead: (conn: SocketConnection<unknown>) => Promise<Uint8Array>;
let receiveNow: (conn: SocketConnection<unknown>) => Uint8Array | undefined;

/**
 * For a protocol on top (the remote managers'): sends `body` as one message
 * without the copy `sendBytes` makes; the caller must not change it after.
 */
export function sendMessage(conn: SocketConnection<unknown>, body: Uint8Array): Promise<void> {
  return sendGiven(conn, body);
}

/**
 * For a protocol on top: the next message without the copy `recvBytes`
 * makes, a view that the caller only reads, at once.
 */
export function receiveMessage(conn: SocketConnection<unknown>): Promise<Uint8Array> {
  return receiveRead(conn);
}

/**
 * The next message if a whole one has arrived already, else `undefined`:
 * for a server that answers requests which came in one read with one write.
 */
export function receiveArrived(conn: SocketConnection<unknown>): Uint8Array | undefined {
  return receiveNow(conn);
}

/** After the authkey handshake, `listener.ts` says whether the peer's challenge was signed by one of ours. */
export function handshaken(conn: SocketConnection<unknown>, ours: boolean): void {
  learn(conn, ours);
}

function plain(bytes: Uint8Array): Uint8Array {
  // Node hands Buffers, often views into a bigger read: the caller gets a Uint8Array of its own.
  return new Uint8Array(bytes);
}

function syncRefused(what: string): never {
  throw new Error(
    `${what} is not available on a socket Connection: a socket is served by the event loop, which a blocked ` +
      `thread stops; use the async form and await it`,
  );
}

/**
 * A connection to another program over a socket, from {@linkcode Listener.accept}
 * or {@linkcode Client}: Python's `multiprocessing.connection.Connection`.
 *
 * @example
 * ```ts
 * import { Client } from "@mp/multiprocessing/connection";
 * await using conn = await Client(["127.0.0.1", 6000], { authkey: "secret password" });
 * await conn.send([1, "two", null]);
 * console.log(await conn.recv());
 * ```
 */
export class SocketConnection<T = unknown> {
  readonly #socket: Socket;
  readonly #peer: string;
  readonly #reader: FrameReader;
  /** Whole messages not yet received, and their bytes. */
  // A list and the index of its head, not shift(): measured, shift() on an array in a private field took
  // 2 s for 20 000 messages on Node and Deno (no left-trimming there), this takes microseconds.
  #inbox: (Uint8Array | undefined)[] = [];
  #inboxHead = 0;
  #inboxBytes = 0;
  /** Waiting `poll`s and `wait()`s. */
  #waiters: Waiter[] = [];
  /** Waiting receives, in order: each gets the next message. */
  #takers: Taker[] = [];
  /** Calls waiting on the socket: it is ref'd (keeps the program alive) while there is one. */
  #busy = 0;
  #closed = false;
  /** What the peer reads; `unknown` until the handshake or a signed message says. */
  #kind: PeerKind = "unknown";
  /** Whether our pickles carry our signature: until an authkey handshake told the peer who we are. */
  #signing = true;
  /** What is sent, written once per turn of the event loop. */
  readonly #outbox: Outbox;

  static {
    learn = (conn, ours) => {
      conn.#kind = ours ? "ours" : "pickle";
      conn.#signing = false;
    };
    sendGiven = (conn, body) => {
      conn.#checkOpen("sendBytes");
      return conn.#broken("sendBytes") ?? conn.#outbox.message(body, true);
    };
    receiveRead = (conn) => conn.#next("recvBytes");
    receiveNow = (conn) => !conn.#closed && conn.#inbox.length > conn.#inboxHead ? conn.#take() : undefined;
  }
  /** Why nothing more will come: end of file, or the error that broke the stream. */
  #ended?: Error;

  /** Socket connections come from {@linkcode Listener.accept} and {@linkcode Client}. */
  constructor() {
    if (!adopting) throw new TypeError("a SocketConnection is made by Listener.accept() or Client(), not by new");
    const { socket, options } = adopting;
    adopting = undefined;
    this.#socket = socket;
    this.#peer = options.peer;
    this.#outbox = new Outbox(socket, options.peer, () => this.#hold(), () => this.#release());
    this.#reader = new FrameReader(options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES, (body) => {
      if (this.#kind === "unknown" && signedMessage(body)) this.#kind = "ours";
      const taker = this.#takers.shift();
      if (taker) {
        this.#release();
        return taker.resolve(body);
      }
      this.#inbox.push(body);
      this.#inboxBytes += body.length;
      if (this.#inboxBytes > READ_AHEAD) socket.pause();
    });
    socket.setNoDelay?.(true);
    socket.on("data", (chunk: Uint8Array) => {
      try {
        this.#reader.push(chunk);
      } catch (error) {
        this.#break(new Error(`connection from ${this.#peer} closed: ${(error as FrameError).message}`));
        return;
      }
      this.#wake();
    });
    socket.on("end", () => {
      if (this.#reader.pending > 0 || this.#reader.expected >= 0) {
        const got = this.#reader.pending;
        this.#cut(
          new Error(
            `connection from ${this.#peer} closed: the peer closed the connection in the middle of a message ` +
              `(${got} byte(s) of ${this.#reader.expected >= 0 ? this.#reader.expected : "a header"} came)`,
          ),
        );
      } else this.#finish(new EOFError());
    });
    socket.on("error", (error: Error) => {
      const code = (error as { code?: string }).code;
      const failed = new Error(`connection from ${this.#peer} failed: ${error.message}`, { cause: error });
      if (code === "ECONNRESET" || code === "EPIPE") {
        if (this.#reader.pending === 0 && this.#reader.expected < 0) return this.#finish(new EOFError());
        // Reset in the middle of a message (e.g. by a peer whose close() gave up on its unsent bytes): the
        // whole messages before it are sound, and are received first, as Python would read them.
        return this.#cut(failed);
      }
      this.#break(failed);
    });
    socket.on("close", () => {
      // Whatever is still on its way now never goes (the runtime may not call those writes back).
      this.#outbox.abandon(
        new Error(
          `send: the connection to ${this.#peer} closed before the peer took all the bytes of this turn's sends`,
        ),
      );
      this.#finish(new EOFError());
    });
    socket.unref();
    socket.resume();
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** A socket connection receives (as Python's, whose flag stays set). */
  get readable(): boolean {
    return true;
  }

  /** A socket connection sends. */
  get writable(): boolean {
    return true;
  }

  /** The peer's address as it appears in errors. */
  get peer(): string {
    return this.#peer;
  }

  /**
   * Sends `obj` as a Python pickle (protocol 4, Python's default), which the
   * peer reads with `recv()`, in TypeScript or in Python. To a peer known to
   * be a program of this library (it signed the authkey handshake, or,
   * without a key, a message from it arrived), a value that pickle cannot
   * carry exactly goes in the library's own encoding instead, as on a Pipe:
   * `Map`, `Set`, `Date`, typed arrays, errors, bigint, `undefined`. The
   * Promise resolves once the bytes are handed to the operating system.
   *
   * @throws {PickleError} synchronously, naming a value that the peer could not read (see `dumps`).
   * @throws {Error} synchronously, when the connection is closed.
   */
  send(obj: T): Promise<void> {
    this.#checkOpen("send");
    const broken = this.#broken("send");
    if (broken) return broken;
    const kind = this.#kind;
    let framed: Uint8Array;
    try {
      // Signed while the peer may not know us: Python's loads() ignores the bytes after the pickle. A view of
      // the pickler's buffer, which the outbox copies at once.
      framed = framedPickle(obj, kind === "ours", this.#signing ? SIGNATURE : undefined, true);
    } catch (error) {
      return this.#outbox.message(this.#notPickled(obj, kind, error), true);
    }
    return this.#outbox.framed(framed);
  }

  /** The message of `obj`, which pickle refused with `error`: our encoding to one of ours, else the error named. */
  #notPickled(obj: unknown, kind: PeerKind, error: unknown): Uint8Array {
    if (kind === "ours" && error instanceof PickleError) return encodeOurs(obj, "Connection.send(obj)");
    if (!(error instanceof PickleError)) throw error;
    throw new PickleError(
      `Connection.send(obj): ${error.message}` +
        (kind === "unknown"
          ? " (the peer is not known to be a program of this library, which would read more: connect with an " +
            "authkey, or wait for a message from it)"
          : ""),
    );
  }

  /**
   * Sends the bytes of `buffer` (from `offset`, `size` bytes) as one message.
   *
   * @throws {RangeError} when `offset`/`size` fall outside the buffer.
   */
  sendBytes(buffer: ArrayBufferView | ArrayBuffer, offset: number = 0, size?: number): Promise<void> {
    this.#checkOpen("sendBytes");
    // Copied now (into the frame): the bytes leave at the end of this turn, and the caller may reuse its
    // buffer at once (as in Python).
    const body = sentBytes(buffer, offset, size);
    return this.#broken("sendBytes") ?? this.#outbox.message(body, false);
  }

  /**
   * Receives the next message and unpickles it (or decodes it, when a
   * program of this library sent it in its own encoding).
   *
   * @throws {EOFError} (as a rejection) when the peer closed the connection and everything it sent was read.
   * @throws {PickleError} when the message is no pickle of plain data; the connection is then closed.
   */
  recv(): Promise<T> {
    this.#checkOpen("recv");
    // Decoded where the message is taken, not in a then() after: one Promise and one microtask per message
    // fewer, which was a tenth of a receiving loop's time (Deno, one-way bench).
    if (this.#inbox.length > this.#inboxHead) {
      const bytes = this.#take();
      try {
        return Promise.resolve(this.#decode(bytes));
      } catch (error) {
        this.#break(this.#garbled());
        return Promise.reject(error);
      }
    }
    if (this.#ended) return Promise.reject(this.#ended);
    return new Promise<T>((resolve, reject) => {
      this.#takers.push({
        resolve: (bytes) => {
          try {
            resolve(this.#decode(bytes));
          } catch (error) {
            reject(error);
            // Not now: the reader is in the middle of the read that brought the message.
            queueMicrotask(() => this.#break(this.#garbled()));
          }
        },
        reject,
      });
      this.#hold();
    });
  }

  /** The value of a message: our encoding or a pickle. */
  #decode(bytes: Uint8Array): T {
    try {
      return (bytes[0] === OURS_TAG ? decodeOurs(bytes) : loads(bytes)) as T;
    } catch (error) {
      throw new PickleError(`Connection.recv from ${this.#peer}: ${(error as Error).message}`, { cause: error });
    }
  }

  #garbled(): Error {
    return new Error(`connection from ${this.#peer} closed: it sent a message that is no valid pickle`);
  }

  /**
   * Receives the next message as bytes.
   *
   * @throws {Error} when it is longer than `maxLength`; the connection is then closed, as in Python.
   * @throws {EOFError} when the peer closed the connection and everything it sent was read.
   */
  recvBytes(maxLength?: number): Promise<Uint8Array> {
    return receiveBytes(() => this.#next("recvBytes").then(plain), () => this.close(), maxLength);
  }

  /**
   * Receives the next message into `buffer` from byte `offset`, and resolves its length.
   *
   * @throws {BufferTooShort} when it does not fit; the message is in the error's `bytes`.
   */
  recvBytesInto(buffer: ArrayBufferView | ArrayBuffer, offset: number = 0): Promise<number> {
    return receiveBytesInto(() => this.#next("recvBytesInto"), buffer, offset);
  }

  /**
   * Whether a whole message waits (or nothing more will come, so `recv`
   * would not wait), waiting up to `timeout` ms (default 0, as in Python;
   * `null` or `Infinity`: as long as it takes).
   */
  poll(timeout: WaitOptions | null = 0): Promise<boolean> {
    this.#checkOpen("poll");
    const wait = readWait(timeout, "Connection.poll");
    if (this.#ready()) return Promise.resolve(true);
    if (wait.timeout === 0) return Promise.resolve(false);
    return this.#holding(within(this.#whenReady(), wait));
  }

  /** Not available on a socket: see the message. */
  recvSync(): T {
    syncRefused("Connection.recvSync");
  }

  /** Not available on a socket: see the message. */
  recvBytesSync(): Uint8Array {
    syncRefused("Connection.recvBytesSync");
  }

  /** Not available on a socket: see the message. */
  sendSync(_obj: T): void {
    syncRefused("Connection.sendSync");
  }

  /** Not available on a socket: see the message. */
  pollSync(_timeout?: number): boolean {
    syncRefused("Connection.pollSync");
  }

  /**
   * Closes the connection; what was sent before still reaches a peer that
   * reads it, which then sees end of file. A peer that does not take it
   * within {@linkcode CLOSE_GRACE_MS} gets the connection reset instead, and
   * the sends not yet handed to the operating system reject: close() never
   * waits on a peer (await a large send first when the peer may be slow).
   * Meanwhile (at most that long without progress) the unsent bytes keep the
   * program alive, as Python's blocking sends would have.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const socket = this.#socket;
    this.#outbox.flush();
    this.#finish(new Error("the connection is closed"));
    // Nobody will receive them: as Python's close() of its socket, which the kernel's unread bytes go with.
    this.#inbox = [];
    this.#inboxHead = 0;
    this.#inboxBytes = 0;
    // Closed whole once what was sent is in the kernel, as Python's close() closes the socket: a peer that
    // still writes gets an error, not a half-open socket that no one reads (seen: a Python peer's send_bytes
    // blocked for ever on the half-closed socket of the first version of this fix).
    if (!this.#outbox.pending || socket.destroyed) {
      socket.destroy();
      return;
    }
    socket.end();
    // The outbox's hold keeps the socket ref'd until its writes call back or are abandoned.
    let written = this.#outbox.written;
    const check = () => {
      if (!this.#outbox.pending || socket.destroyed) return;
      if (this.#outbox.written !== written) {
        written = this.#outbox.written;
        timer = setTimeout(check, CLOSE_GRACE_MS);
        return;
      }
      this.#outbox.abandon(
        new Error(
          `send: the connection to ${this.#peer} was closed before the peer took all the bytes of this ` +
            `turn's sends (none of the pending writes went for ${CLOSE_GRACE_MS} ms after close())`,
        ),
      );
      // With our unread bytes in the kernel, this resets the connection (as Python's close() would).
      socket.destroy();
    };
    let timer = setTimeout(check, CLOSE_GRACE_MS);
    socket.once("finish", () => {
      clearTimeout(timer);
      socket.destroy();
    });
    socket.once("close", () => clearTimeout(timer));
  }

  /** `await using conn = …`: closes the connection. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  /** `using conn = …`: closes the connection. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Whether a whole message waits or nothing more will come: for `wait()`. */
  ready(): boolean {
    return this.#ready();
  }

  /** Resolves when {@linkcode ready} holds; for `wait()`. Keeps the program alive meanwhile. */
  whenReady(): Promise<void> {
    return this.#holding(this.#whenReady());
  }

  /** Settles with the next message: for the handshake, which must see every failure. */
  #next(what: string): Promise<Uint8Array> {
    this.#checkOpen(what);
    if (this.#inbox.length > this.#inboxHead) return Promise.resolve(this.#take());
    if (this.#ended) return Promise.reject(this.#ended);
    // Resolved by the reader with the message itself: no wake-up, no second look at the inbox.
    return new Promise((resolve, reject) => {
      this.#takers.push({ resolve, reject });
      this.#hold();
    });
  }

  /** The oldest message of the inbox (there is one). */
  #take(): Uint8Array {
    const bytes = this.#inbox[this.#inboxHead]!;
    this.#inbox[this.#inboxHead++] = undefined;
    if (this.#inboxHead >= 1024 && this.#inboxHead * 2 >= this.#inbox.length) {
      this.#inbox = this.#inbox.slice(this.#inboxHead);
      this.#inboxHead = 0;
    }
    this.#inboxBytes -= bytes.length;
    if (this.#inboxBytes <= READ_AHEAD && this.#socket.isPaused()) this.#socket.resume();
    return bytes;
  }

  #ready(): boolean {
    return this.#inbox.length > this.#inboxHead || this.#ended !== undefined;
  }

  #whenReady(): Promise<void> {
    if (this.#ready()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** One more call waits on the socket: it keeps the program alive until {@linkcode #release}. */
  #hold(): void {
    if (this.#busy++ === 0 && !this.#closed) this.#socket.ref();
  }

  #release(): void {
    if (--this.#busy === 0) this.#socket.unref();
  }

  /** Keeps the socket ref'd while `promise` is pending. */
  #holding<R>(promise: Promise<R>): Promise<R> {
    this.#hold();
    return promise.finally(() => this.#release());
  }

  #wake(): void {
    if (!this.#ready()) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Nothing more will come, for `reason`; what is in the inbox can still be received. */
  #finish(reason: Error): void {
    this.#ended ??= reason;
    this.#failTakers();
    this.#wake();
  }

  /** Nothing more comes: the waiting receives fail (the inbox is empty while any wait). */
  #failTakers(): void {
    const takers = this.#takers;
    this.#takers = [];
    for (const taker of takers) {
      this.#release();
      taker.reject(this.#ended!);
    }
  }

  /**
   * The stream ended in the middle of a message, for `reason`: the socket is
   * closed and the torn message dropped, but the whole messages that came
   * before it are still received, then `reason`.
   */
  #cut(reason: Error): void {
    if (this.#ended === undefined || this.#ended instanceof EOFError) this.#ended = reason;
    this.#socket.destroy();
    this.#failTakers();
    this.#wake();
  }

  /** The stream is unusable: close the socket, drop what it held, and fail every wait with `reason`. */
  #break(reason: Error): void {
    if (this.#ended === undefined || this.#ended instanceof EOFError) this.#ended = reason;
    this.#inbox = [];
    this.#inboxHead = 0;
    this.#inboxBytes = 0;
    this.#socket.destroy();
    this.#failTakers();
    this.#wake();
  }

  /** A rejected Promise when the socket can no longer send. */
  #broken(what: string): Promise<void> | undefined {
    if (!this.#socket.destroyed && !this.#socket.writableEnded) return undefined;
    return Promise.reject(
      new Error(`${what}: the connection to ${this.#peer} is broken (the peer closed it or it failed)`),
    );
  }

  #checkOpen(what: string): void {
    if (this.#closed) throw new Error(`${what}: the connection is closed`);
  }
}
