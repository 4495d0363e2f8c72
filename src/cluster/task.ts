/**
 * What a worker host's local pool workers run: every cluster task arrives
 * here as its function's description and its pickled data, so that one local
 * `Pool` serves tasks of any module. Runs in a worker thread, never on the
 * host's main thread, so a busy task cannot starve the host's BullMQ lock
 * renewals (which would make a live host look dead).
 *
 * @module
 */
import { pickle, unpickle } from "../pickle.ts";
import { type ReducedError, reduceError } from "../reduction.ts";
import { resolveTarget, type TargetSpec } from "../spawn.ts";
import { APPLY, MAP, type Mode } from "./protocol.ts";

type Callable = (...args: unknown[]) => unknown;

/**
 * This module's own URL, for the host's local pool to import. Taken here, not
 * built as `new URL("./task.ts", …)` elsewhere: in JSR's JavaScript for Node
 * and Bun this file is `task.js`.
 */
export const taskModule: string = import.meta.url;

/** This host's name, for errors that must say where they happened. */
let hostName = "this host";
/** Resolved functions by their description: a module is imported once per worker. */
const resolved = new Map<string, Promise<Callable>>();

/** Finds the function a task names; a module this host cannot import fails with its name and the host's. */
function find(spec: TargetSpec): Promise<Callable> {
  const key = `${spec.module}\n${spec.name}\n${spec.source ?? ""}`;
  let found = resolved.get(key);
  if (!found) {
    found = resolveTarget(spec).catch((error) => {
      // A function that also travelled as source still runs when its module is not here.
      if (spec.source !== undefined) return resolveTarget({ name: spec.name, source: spec.source });
      throw new Error(`host ${hostName} cannot import ${spec.module} for ${spec.name}: ${error?.message ?? error}`, {
        cause: error,
      });
    });
    resolved.set(key, found);
    found.catch(() => resolved.delete(key));
  }
  return found;
}

/**
 * Runs one cluster task: `fn(...args)` for APPLY, or `fn` over a chunk.
 * Returns the result as bytes, or the task's error reduced here: reduced once,
 * its cause stays an error of its class (an error revived and reduced again
 * comes back with the cause copied among its own properties too).
 */
export async function runClusterTask(
  spec: TargetSpec,
  mode: Mode,
  data: Uint8Array,
): Promise<Uint8Array | ReducedError> {
  try {
    return await run(spec, mode, data);
  } catch (error) {
    return reduceError(error);
  }
}

async function run(spec: TargetSpec, mode: Mode, data: Uint8Array): Promise<Uint8Array> {
  const fn = await find(spec);
  const args = unpickle(data) as unknown[];
  let result: unknown;
  if (mode === APPLY) result = await fn(...args);
  else {
    const out = new Array(args.length);
    for (let i = 0; i < args.length; i++) {
      out[i] = mode === MAP ? fn(args[i]) : fn(...(args[i] as unknown[]));
      if (out[i] instanceof Promise) out[i] = await out[i];
    }
    result = out;
  }
  // pickle() returns a view of scratch space: copy it out before the next task reuses it.
  return pickle(result, "the task's result").slice();
}

/** The local pool's initializer on a host: learns the host's name, then runs the user's initializer. */
export async function initClusterHost(
  name: string,
  initializer: TargetSpec | null,
  initargs: readonly unknown[],
): Promise<void> {
  hostName = name;
  if (initializer) await (await find(initializer))(...initargs);
}
