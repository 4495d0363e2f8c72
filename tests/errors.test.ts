import { test } from "node:test";
import assert from "node:assert/strict";
import { Empty, Pool } from "../mod.ts";
import { ValidationError } from "./fixtures/errors.ts";
import { checkNoLeaks } from "./leaks.ts";
import { runScript } from "./scripts.ts";

checkNoLeaks();

const module = new URL("./fixtures/errors.ts", import.meta.url);

test(
  "errors: a child's error whose class its module exports is re-thrown as that class",
  { timeout: 30_000 },
  async () => {
    // As Python re-raises the same class: `except ValidationError` / `instanceof ValidationError` holds.
    await using pool = new Pool({ processes: 1, module });
    const error = await pool.apply("validate", ["age"]).then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof ValidationError, `got ${String(error)}`);
    assert.ok(error instanceof Error);
    assert.equal(error.name, "ValidationError");
    assert.equal(error.message, "age is invalid");
    assert.equal(error.field, "age", "its own fields are kept");
    assert.match(error.stack ?? "", /at validate .*fixtures\/errors\.ts/, "the child's stack");
    assert.ok(error.cause instanceof RangeError);
    assert.equal((error.cause as Error).message, "too big");
    assert.deepEqual(Object.keys(error), ["field"], "message and stack are not enumerable, as on a thrown error");
  },
);

test("errors: this library's own error classes are re-thrown as themselves", { timeout: 30_000 }, async () => {
  await using pool = new Pool({ processes: 1, module });
  await assert.rejects(
    pool.apply("empty", []),
    (e: unknown) => e instanceof Empty && e.message === "the queue is empty",
  );
});

test(
  "errors: a class its module does not export arrives as an Error with its name, message and stack",
  { timeout: 30_000 },
  async () => {
    await using pool = new Pool({ processes: 1, module });
    const error = await pool.apply("hide", []).then(() => undefined, (e: unknown) => e as Error);
    assert.ok(error instanceof Error);
    assert.equal(Object.getPrototypeOf(error), Error.prototype);
    assert.equal(error.name, "HiddenError");
    assert.equal(error.message, "kept in the module");
    assert.match(error.stack ?? "", /at hide .*fixtures\/errors\.ts/);
  },
);

test(
  "errors: a class of the main module, still evaluating, arrives by name without waiting for the main module",
  { timeout: 30_000 },
  async () => {
    // Importing a module that awaits this very result at its top level would never settle: the parent does
    // not wait for it, and revives the error by name (an instance of the class once the main module has ended).
    const script = await runScript("tests/fixtures/main_error.ts");
    assert.equal(script.code, 0, script.stderr);
    assert.equal(script.stdout, "MainError: from the worker; instanceof false\n");
  },
);

test("errors: a class reference that cannot be followed falls back to the name, never failing", async () => {
  const { reviveErrorClass } = await import("../src/reduction.ts");
  const cases = [
    { module: new URL("./fixtures/no_such_module.ts", import.meta.url).href, name: "Gone" },
    { module: module.href, name: "validate" },
    { module: module.href, name: "NoSuchExport" },
  ];
  for (const type of cases) {
    const error = await reviveErrorClass({ name: "Gone", message: "m", stack: "Gone: m\n    at x", type }) as Error;
    assert.equal(Object.getPrototypeOf(error), Error.prototype, type.name);
    assert.deepEqual([error.name, error.message, error.stack], ["Gone", "m", "Gone: m\n    at x"]);
  }
});
