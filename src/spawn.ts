/**
 * How code gets into a worker, as Python's `spawn`: a target is sent by
 * reference (module URL + export name) and the worker imports that module,
 * whose top-level code runs again there (guard spawning code with
 * `if (import.meta.main)`). A function that its module does not export is
 * sent as source text and must be self-contained.
 *
 * @module
 */

/** What a worker needs to find a target: by reference, by source, or both. */
export interface TargetSpec {
  /** URL or specifier of the module to import. */
  module?: string;
  /** Export name (of a function or of a `Process` subclass). */
  name: string;
  /** The function's source text, used when the module does not export it. */
  source?: string;
  /** Another module to look in first when `module` does not export it (a Pool's call site). */
  also?: string;
}

const ourFolder = new URL("./", import.meta.url).href;

type Callable = (...args: unknown[]) => unknown;

/**
 * The library's own targets (the pool worker, the manager server) by name. A
 * child finds them here when their module does not export them: in an app
 * bundle that module is the bundle, which exports only the app's names.
 */
const libraryTargets = new Map<string, Callable>();

/** Called by `mod.ts` with the functions that the library itself runs in children. */
export function registerLibraryTargets(...targets: ((...args: never[]) => unknown)[]): void {
  for (const target of targets) libraryTargets.set(target.name, target as Callable);
}

// A location follows a space or a parenthesis: Node's own frames (`node:internal/…:1:2`) end in a path
// too, which in a bundle, where every frame before them is ours, would pass for the caller.
const frame = /(?:^|[\s(])((?:file|https?):\/\/[^\s()]+?|\/[^\s():]+?):\d+:\d+\)?\s*$/;

/**
 * The URL of the module that called into the library: the first stack frame
 * outside this folder. In a bundle, where the library and the caller share a
 * file, that file.
 */
export function callerModule(): string | undefined {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 100;
  const stack = new Error().stack ?? "";
  Error.stackTraceLimit = limit;
  let last: string | undefined;
  for (const line of stack.split("\n")) {
    const match = frame.exec(line);
    if (!match) continue;
    const url = match[1].startsWith("/") ? new URL(match[1], "file:///").href : match[1];
    if (!url.startsWith(ourFolder)) return url;
    last = url;
  }
  return last;
}

/** Resolves a user's `module` option against the module that gave it. */
export function moduleSpecifier(module: string | URL | undefined, caller: string | undefined): string | undefined {
  if (module === undefined) return caller;
  const text = String(module);
  return /^\.{1,2}\//.test(text) && caller ? new URL(text, caller).href : text;
}

/**
 * Describes `target` for a worker.
 *
 * @throws {TypeError} when the target is neither a function nor an export name,
 * or is a function without source text (native or bound).
 */
export function describeTarget(target: unknown, module: string | undefined, what: string): TargetSpec {
  if (typeof target === "string") {
    if (!module) throw new TypeError(`${what}: a target given by name needs the module that exports it ({ module })`);
    return { module, name: target };
  }
  if (typeof target !== "function") {
    throw new TypeError(`${what}: target must be a function or the name of an exported function, got ${typeof target}`);
  }
  const source = Function.prototype.toString.call(target);
  if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) {
    throw new TypeError(
      `${what}: ${
        target.name || "the target"
      } is a native or bound function, which cannot be sent; export a plain function`,
    );
  }
  return { module, name: target.name, source };
}

async function importModule(spec: TargetSpec): Promise<Record<string, unknown> | undefined> {
  return spec.module ? await import(spec.module) : undefined;
}

/** In the worker: the function that `spec` describes. */
export async function resolveTarget(spec: TargetSpec): Promise<Callable> {
  // The same name may belong to an unrelated function; only identical source proves it is the target.
  const isTarget = (fn: unknown): fn is Callable =>
    typeof fn === "function" && (spec.source === undefined || fn.toString() === spec.source);
  const exported = (await importModule(spec))?.[spec.name];
  if (isTarget(exported)) return exported;
  const other = spec.also ? (await import(spec.also))[spec.name] : undefined;
  if (isTarget(other)) return other;
  const own = libraryTargets.get(spec.name);
  if (isTarget(own)) return own;
  if (spec.source === undefined) {
    throw new TypeError(`${spec.module} has no exported function named ${spec.name}`);
  }
  return fromSource(spec);
}

/** In the worker: the class (a `Process` subclass) that `spec` describes. */
export async function resolveClass(spec: TargetSpec): Promise<abstract new (...args: never[]) => unknown> {
  const exported = (await importModule(spec))?.[spec.name];
  if (typeof exported !== "function") {
    throw new TypeError(
      `the Process subclass ${spec.name} must be exported from ${spec.module}, so that the worker can import it`,
    );
  }
  return exported as abstract new (...args: never[]) => unknown;
}

function fromSource(spec: TargetSpec): Callable {
  const source = spec.source!;
  let fn: unknown;
  try {
    fn = new Function(`return (${source});`)();
  } catch {
    // Method shorthand (`name(x) { … }`) is only valid inside an object literal.
    fn = Object.values(new Function(`return ({ ${source} });`)())[0];
  }
  const hint = `${spec.name || "The target"} was sent as source text because ${
    spec.module ?? "its module"
  } does not export it, so it cannot use variables from around it: export it so the worker can import it`;
  return (...args: unknown[]) => {
    try {
      const result = (fn as Callable)(...args);
      return result instanceof Promise ? result.catch((e) => Promise.reject(explain(e, hint))) : result;
    } catch (e) {
      throw explain(e, hint);
    }
  };
}

function explain(error: unknown, hint: string): unknown {
  if (!(error instanceof ReferenceError)) return error;
  const message = `${error.message}. ${hint}`;
  if (error.stack?.startsWith(`${error.name}: ${error.message}`)) {
    error.stack = `${error.name}: ${message}${error.stack.slice(error.name.length + 2 + error.message.length)}`;
  }
  error.message = message;
  return error;
}
