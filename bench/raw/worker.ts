// deno-lint-ignore-file no-explicit-any -- raw messages and runtime globals are untyped here
// The one place in bench/raw that knows which runtime it is on. Every other
// file talks to workers through this interface, so the measured code is the
// same text on Deno, Bun and Node and differences are the platform's own.

export type Runtime = "deno" | "bun" | "node";

const g = globalThis as any;

export const runtime: Runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";

export function runtimeLabel(): string {
  if (runtime === "deno") return `deno ${g.Deno.version.deno}`;
  if (runtime === "bun") return `bun ${g.Bun.version}`;
  return `node ${g.process.versions.node}`;
}

// The raw primitive is the one the library builds on (src/adapters): Deno's
// Web Worker, and worker_threads on Node and Bun (Bun's Web Worker cannot stop
// a busy thread, so the library does not use it).
const threads = runtime === "deno" ? null : await import("node:worker_threads");

export type Handler = (data: any) => void;

export interface RawWorker {
  post(msg: unknown, transfer?: unknown[]): void;
  // Replaces the current handler. With no handler, messages are held rather
  // than dropped, so awaiting one reply after another never loses any.
  onMessage(cb: Handler | null): void;
  // Settles when the worker ends by itself. Deno's Worker has no exit or close
  // event at all, so there it is null and the caller must decide what to do.
  exited: Promise<void> | null;
  terminate(): Promise<void>;
}

export interface RawPort {
  post(msg: unknown, transfer?: unknown[]): void;
  onMessage(cb: Handler): void;
  // Lets the worker end on its own once it is idle (the worker side of
  // RawWorker.exited); already-posted messages still arrive.
  close(): void;
}

// Bun's worker "close" event after terminate() normally comes within a few
// ms; the cap only exists so a misbehaving runtime cannot hang a bench.
const TERMINATE_WAIT_MS = 5_000;

function bounded(p: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const cap = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return Promise.race([p, cap]).finally(() => clearTimeout(timer));
}

export function spawnRaw(url: URL): RawWorker {
  let handler: Handler | null = null;
  const held: unknown[] = [];
  const deliver = (data: unknown) => {
    if (handler) handler(data);
    else held.push(data);
  };
  const onMessage = (cb: Handler | null) => {
    handler = cb;
    // A handler may clear itself after one message; stop flushing when it does.
    while (handler && held.length > 0) handler(held.shift());
  };

  if (threads) {
    const w = new threads.Worker(url);
    w.on("message", deliver);
    const exited = new Promise<void>((resolve) => w.once("exit", () => resolve()));
    return {
      post: (msg, transfer) => w.postMessage(msg, transfer as never),
      onMessage,
      exited,
      terminate: async () => {
        await bounded(w.terminate().then(() => {}), TERMINATE_WAIT_MS);
      },
    };
  }

  const w = new g.Worker(url, { type: "module" });
  // Deno (and Bun) drop messages that arrive before a listener exists, so the
  // listener goes on in the same tick as the constructor, before any await.
  w.onmessage = (e: MessageEvent) => deliver(e.data);
  let exited: Promise<void> | null = null;
  if (runtime === "bun") {
    exited = new Promise<void>((resolve) => w.addEventListener("close", () => resolve()));
    // Deno and Node take the parent down on an uncaught worker error. Bun
    // neither exits nor says anything, leaving the bench to sit until its
    // timeout, and even a rethrow from a timer does not stop it; so exit.
    w.addEventListener("error", (e: ErrorEvent) => {
      console.error("uncaught error in worker:", e.error ?? e.message);
      g.process.exit(1);
    });
  }
  return {
    post: (msg, transfer) => w.postMessage(msg, transfer ?? []),
    onMessage,
    exited,
    terminate: async () => {
      w.terminate();
      if (exited) await bounded(exited, TERMINATE_WAIT_MS);
    },
  };
}

export function workerPort(): RawPort {
  if (threads) {
    const port = threads.parentPort;
    if (!port) throw new Error("workerPort() called outside a worker");
    return {
      post: (msg, transfer) => port.postMessage(msg, transfer as never),
      onMessage: (cb) => {
        port.removeAllListeners("message");
        port.on("message", cb);
      },
      close: () => port.close(),
    };
  }
  return {
    post: (msg, transfer) => g.postMessage(msg, transfer ?? []),
    onMessage: (cb) => {
      g.onmessage = (e: MessageEvent) => cb(e.data);
    },
    // Bun's workers have no self.close(); like Node's, they end once nothing
    // keeps them alive, and the message handler is the only thing here that does.
    close: runtime === "bun" ? () => void (g.onmessage = null) : () => g.close(),
  };
}
