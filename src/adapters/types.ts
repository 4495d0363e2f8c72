/**
 * The boundary between the library and a runtime's workers. Everything that
 * differs between Deno, Bun, Node (and, later, a browser) lives behind
 * {@linkcode Adapter}; nothing outside `src/adapters/` asks which runtime it is.
 *
 * @module
 */

/** How a worker thread ended, as the runtime reports it. */
export interface ThreadEnd {
  /** The thread's exit code as far as the runtime knows it. */
  code: number;
  /** An error the runtime reported as uncaught in the thread, if any. */
  error?: unknown;
  /**
   * The end was declared by `terminate()`, not seen: the thread may still be
   * running synchronous code (Deno), so its last shared write may still be in
   * flight (see `fence.ts`).
   */
  mayRun?: boolean;
}

/** What the parent passes when it starts a worker thread. */
export interface SpawnOptions {
  /** Shown by the runtime in its own diagnostics. */
  name: string;
  /** Every message the worker posts on its own port. */
  onMessage(data: unknown): void;
  /** Called once, when the thread is gone for good. */
  onEnd(end: ThreadEnd): void;
  /** The most heap the thread may use, in MiB, where the runtime can enforce it (Node only). */
  memoryLimit?: number;
  /**
   * The thread will be a daemon: it must be able to let the program end
   * (`keepAlive(false)`) while it runs. Deno then starts it on
   * `node:worker_threads`, slower to start than its Web Workers but unref'able.
   */
  detached?: boolean;
}

/** The parent's handle on one worker thread. */
export interface ThreadHandle {
  post(data: unknown, transfer?: Transferable[]): void;
  /** Stops the thread; `onEnd` still fires once it is gone. */
  terminate(): void;
  /** Whether the thread keeps the parent's event loop alive (Python's non-daemon); see {@linkcode Adapter.canUnref}. */
  keepAlive(alive: boolean): void;
}

/** The worker side's view of its parent. */
export interface ParentPort {
  post(data: unknown, transfer?: Transferable[]): void;
  onMessage(listener: (data: unknown) => void): void;
}

/** One runtime's implementation of threads, exit and output. */
export interface Adapter {
  /** The runtime's name, for diagnostics and the README's support table. */
  readonly runtime: "deno" | "bun" | "node";
  /** The OS process id of this program. */
  readonly pid: number;
  /**
   * Whether `keepAlive(false)` really lets the program end while the thread
   * lives. The "forkserver" start method needs it: its spare worker waits for
   * work for as long as the program runs, and must never hold it open.
   */
  readonly canUnref: boolean;
  /**
   * JavaScript that the entry of every worker runs before it loads the
   * library's modules, for what must precede their compilation (Node's
   * compile cache) or their first await (Deno's early messages).
   */
  readonly workerPrelude?: string;
  /** Starts a worker thread running the module at `url`. */
  spawn(url: URL, options: SpawnOptions): ThreadHandle;
  /** The port to the parent when this thread is a worker, else `null`. */
  parent(): ParentPort | null;
  /** Ends this thread at once with `code`; on the main thread, ends the program. */
  exit(code: number): never;
  /** Routes errors nobody caught in this worker thread to `handler`, instead of the runtime's default report. */
  onUncaught(handler: (error: unknown) => void): void;
  /**
   * What a worker copies from its parent when it is created, and the parent
   * may change later: `process.env` on Node and Bun. Sent with every
   * bootstrap, so that a worker started ahead of need ("forkserver") sees
   * what a new one would. Absent where workers share it (Deno).
   */
  environment?(): Record<string, string>;
  /** In a worker: takes the parent's {@linkcode Adapter.environment} as its own. */
  setEnvironment?(environment: Record<string, string>): void;
  /** Writes text to the program's standard error without a trailing newline. */
  writeError(text: string): void;
  /**
   * Takes the next message waiting on `port` at once, without the event loop
   * (`receiveMessageOnPort`; Deno's is reached through its Node layer, loaded
   * on first use, which takes from a Web MessagePort too in Deno 2.9). The
   * resource sharer receives with it in the middle of a synchronous `get`.
   */
  receiveNow(port: MessagePort): { message: unknown } | undefined;
  /**
   * Whether an idle pool worker waits for work in `Atomics.wait` and takes
   * its tasks with {@linkcode Adapter.receiveNow} (Node, Bun), rather than on
   * the event loop (Deno, where the pool was measured without the Node
   * layer's call).
   */
  poolPollsPorts: boolean;
  /**
   * Called before making a MessagePort that must not hold the program open
   * once unref'd (a pool's port to its worker); absent where every port's
   * `unref()` holds.
   */
  beforeUnrefPort?(): void;
}
