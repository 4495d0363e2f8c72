/**
 * What the manager's server keeps: a referent, one managed object with the
 * count of handles on it, and for an object of a user's class (Python's
 * `BaseManager.register`) how it is made from its recipe and which of its
 * methods a proxy may call (Python's `exposed`, `_exposed_`, else its public
 * methods).
 *
 * @module
 */
import { methodsOf } from "./builtins.ts";
import { isThenable } from "../thenable.ts";
import type { How, Recipe, Typeid } from "./wire.ts";

/** One managed object, and how many handles on it are out. */
export interface Referent {
  typeid: Typeid;
  value: unknown;
  handles: number;
  /** Whether it may hold proxies (reductions): its values then go out walked for them. */
  reduced: boolean;
  /** An object of a user's class: settles once its module is imported and the object made; calls wait for it. */
  making?: Promise<void>;
  /** Why that failed: every call on it rejects with this. */
  failed?: unknown;
  /** The class's name, for messages. */
  className?: string;
  /** The methods a proxy may call, when its registration or its class's `_exposed_` names them. */
  exposed?: string[];
  /** What its registration says of its methods and of the typeids their results become. */
  how?: How;
}

/** How a referent is named in messages: `dict`, or its class's name. */
export function nameOf(referent: Referent): string {
  return referent.className ?? referent.typeid;
}

/** Makes an object of a user's class (or calls a registered factory) in the server, once its module is imported. */
export function make(referent: Referent, [spec, args, how]: Recipe): void {
  referent.className = spec.name;
  referent.how = how;
  referent.making = (async () => {
    const exported = spec.module === undefined ? undefined : (await import(spec.module))[spec.name];
    if (typeof exported !== "function") {
      throw new TypeError(
        `the ${how?.construct === false ? "function" : "class"} ${spec.name} must be exported from ` +
          `${spec.module ?? "its module"}, so that the manager's server can import it`,
      );
    }
    let value = how?.construct === false
      ? (exported as (...args: unknown[]) => unknown)(...args)
      : new (exported as new (...args: unknown[]) => unknown)(...args);
    if (isThenable(value)) value = await value;
    referent.value = value;
    referent.exposed = how?.exposed ?? declaredExposed(value);
  })().catch((error) => void (referent.failed = error)).finally(() => (referent.making = undefined));
}

/** A class's (or an object's) own `_exposed_` list, as Python reads `obj._exposed_`. */
export function declaredExposed(value: unknown): string[] | undefined {
  if (value === null || (typeof value !== "object" && typeof value !== "function")) return undefined;
  const declared = (value as { _exposed_?: unknown })._exposed_ ??
    (value as { constructor?: { _exposed_?: unknown } }).constructor?._exposed_;
  return Array.isArray(declared) ? declared.map(String) : undefined;
}

/** The methods a proxy of `referent` may call: those exposed, else every public method (Python's `public_methods`). */
export function exposedOf(referent: Referent): string[] {
  if (referent.typeid !== "object") return Object.keys(methodsOf[referent.typeid]);
  if (referent.failed !== undefined) throw referent.failed;
  if (referent.exposed) return [...referent.exposed];
  const names = new Set<string>();
  for (let at = referent.value as object | null; at && at !== Object.prototype; at = Object.getPrototypeOf(at)) {
    for (const name of Object.getOwnPropertyNames(at)) {
      if (name.startsWith("_") || name === "constructor") continue;
      if (typeof (referent.value as Record<string, unknown>)[name] === "function") names.add(name);
    }
  }
  return [...names].sort();
}

/** The method `name` of an object of a user's class: an exposed one, else a public one, as Python's AutoProxy. */
export function methodOf(referent: Referent, name: string): ((...args: unknown[]) => unknown) | undefined {
  if (referent.failed !== undefined) throw referent.failed;
  if (referent.exposed ? !referent.exposed.includes(name) : name.startsWith("_") || name === "constructor") {
    return undefined;
  }
  const method = (referent.value as Record<string, unknown>)[name];
  return typeof method === "function" ? (method as (...args: unknown[]) => unknown) : undefined;
}
