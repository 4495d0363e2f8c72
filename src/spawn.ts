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
    if (!url.startsWith(ourFolder)) return remember(url);
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

/** Modules this worker is importing for a target right now, in the order the imports began. */
const importing: string[] = [];

/**
 * The module this worker is importing to find a target, if any: while it is
 * evaluated, its top-level code must not start processes (Python's spawn
 * refuses that too, in its bootstrapping phase), or every child of an
 * unguarded module would start another, without end.
 */
export function importingFor(): string | undefined {
  return importing[0];
}

/** The namespaces of the modules imported here for targets, by URL: found again without waiting. */
const namespaces = new Map<string, Record<string, unknown>>();

/** Modules whose namespace is on its way: a module still being evaluated (a main module in its top-level await). */
const arriving = new Set<string>();

/**
 * Keeps the namespace of a module that called into the library, for finding
 * its exports later (an error's class, a function sent by reference). That
 * module is loaded in this thread already, so importing it runs nothing; it
 * resolves once the module has finished evaluating, and is never waited for.
 */
function remember(url: string): string {
  if (namespaces.has(url) || arriving.has(url)) return url;
  arriving.add(url);
  import(url).then(
    (namespace) => (namespaces.set(url, namespace), arriving.delete(url)),
    () => arriving.delete(url),
  );
  return url;
}

/** Where an export is: its module and name. */
export interface ExportRef {
  module: string;
  name: string;
}

/** The module and export name of `value` (a class, a function) among the modules known here, if any. */
export function exportOf(value: unknown): ExportRef | undefined {
  if (typeof value !== "function") return undefined;
  for (const [module, namespace] of namespaces) {
    for (const name of Object.keys(namespace)) if (namespace[name] === value) return { module, name };
  }
  return undefined;
}

/**
 * The export `ref` names: at once when its module is known here; after
 * importing it otherwise; `undefined` when it cannot be had, or only by
 * waiting for a module still being evaluated here, which may be waiting for
 * this very value (a main module awaiting a pool's result at its top level).
 */
export function exported(ref: ExportRef): unknown | Promise<unknown> {
  const known = namespaces.get(ref.module);
  if (known) return known[ref.name];
  if (arriving.has(ref.module)) return undefined;
  return importModule({ module: ref.module, name: ref.name }).then(
    (namespace) => namespace?.[ref.name],
    () => undefined,
  );
}

async function importModule(spec: TargetSpec): Promise<Record<string, unknown> | undefined> {
  if (!spec.module) return undefined;
  const known = namespaces.get(spec.module);
  if (known) return known;
  importing.push(spec.module);
  try {
    const namespace = await import(spec.module);
    namespaces.set(spec.module, namespace);
    return namespace;
  } finally {
    importing.splice(importing.indexOf(spec.module), 1);
  }
}

/** In the worker: the function that `spec` describes. */
export async function resolveTarget(spec: TargetSpec): Promise<Callable> {
  await importModule(spec);
  let found = findExported(spec);
  // A pool's tasks are looked up where the pool was made first, then at the call site (`also`).
  if (!found && spec.also) {
    const there = { ...spec, module: spec.also };
    await importModule(there);
    found = findExported(there);
  }
  if (found) return found;
  if (spec.source === undefined) {
    throw new TypeError(`${spec.module} has no exported function named ${spec.name}`);
  }
  return fromSource(spec);
}

/**
 * The export that `spec` describes, among the modules this worker has
 * already imported: `spec.module` first, then the others (a function sent
 * from a module that only re-exports or imports it names that module).
 */
function findExported(spec: TargetSpec): Callable | undefined {
  // The same name may belong to an unrelated function; only identical source proves it is the one.
  const isTarget = (fn: unknown): fn is Callable =>
    typeof fn === "function" && (spec.source === undefined || fn.toString() === spec.source);
  const named = spec.module === undefined ? undefined : namespaces.get(spec.module);
  for (const namespace of spec.source === undefined ? [named] : [named, ...namespaces.values()]) {
    const exported = namespace?.[spec.name];
    if (isTarget(exported)) return exported;
  }
  const own = libraryTargets.get(spec.name);
  return isTarget(own) ? own : undefined;
}

/**
 * A function that arrived inside a value (in `args`, a queue item, a pipe
 * message): by reference, as Python's pickle sends a module-level function,
 * when a module this worker imported exports it; otherwise rebuilt from its
 * source text. Synchronous, so no module is imported here: a worker has
 * imported its target's module (in a program, the main module) before any
 * such value reaches it, and importing another on the way could run a module
 * that nobody meant to load here (a test file) or wait for one still being
 * evaluated (the main module, awaiting this very value).
 */
export function functionFrom(spec: TargetSpec): Callable {
  return findExported(spec) ?? fromSource(spec);
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
  const rebuilt = (...args: unknown[]) => {
    try {
      const result = (fn as Callable)(...args);
      return result instanceof Promise ? result.catch((e) => Promise.reject(explain(e, hint))) : result;
    } catch (e) {
      throw explain(e, hint);
    }
  };
  // Named as the original, as a function that came by reference is (Python's `func.__name__`).
  return Object.defineProperty(rebuilt, "name", { value: spec.name });
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
