import { test } from "node:test";
import assert from "node:assert/strict";
import { DEBUG, getContext, getLogger, INFO, Logger, type LogRecord, logToStderr, WARNING } from "../mod.ts";
import { checkNoLeaks } from "./leaks.ts";
import { runScript, type ScriptResult } from "./scripts.ts";

checkNoLeaks();

const program = new URL("./fixtures/logging.ts", import.meta.url).pathname;

async function run(mode: string): Promise<ScriptResult> {
  process.env.MP_LOG_MODE = mode;
  try {
    return await runScript(program, 40_000);
  } finally {
    delete process.env.MP_LOG_MODE;
  }
}

test("logging: logToStderr(INFO) prints Python's lifecycle lines of a child, in Python's format", {
  timeout: 60_000,
}, async () => {
  const { code, stdout, stderr } = await run("info");
  assert.equal(code, 0, stderr);
  assert.equal(stdout, "Doing some work\n");
  // What Python 3.11 prints for the same program, but for its main process's own "process shutting down".
  assert.deepEqual(stderr.trimEnd().split("\n"), [
    "[INFO/Process-1] child process calling self.run()",
    "[INFO/Process-1] process shutting down",
    "[INFO/Process-1] process exiting with exitcode 0",
  ]);
});

test("logging: off by default, nothing is printed", { timeout: 60_000 }, async () => {
  const { code, stdout, stderr } = await run("off");
  assert.equal(code, 0, stderr);
  assert.equal(stdout, "Doing some work\n");
  assert.equal(stderr, "");
});

test("logging: at DEBUG, pool workers added, exiting after maxtasks, cleaned up; a manager serving and shut down", {
  timeout: 60_000,
}, async () => {
  const { code, stdout, stderr } = await run("debug");
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^Doing some work\n\[ ?1, 4 ?\]\n$/);
  const lines = stderr.trimEnd().split("\n");
  const count = (line: string | RegExp) =>
    lines.filter((l) => (typeof line === "string" ? l === line : line.test(l))).length;
  assert.equal(count("[DEBUG/MainProcess] added worker"), 2, "one worker, and its replacement");
  assert.equal(count("[DEBUG/SpawnPoolWorker-2] worker exiting after 1 tasks"), 1, stderr);
  assert.equal(count("[DEBUG/SpawnPoolWorker-3] worker exiting after 1 tasks"), 1, stderr);
  assert.equal(count(/^\[DEBUG\/MainProcess\] cleaning up worker \d+$/), 2, stderr);
  assert.equal(count("[INFO/SpawnPoolWorker-2] child process calling self.run()"), 1, stderr);
  assert.equal(count(/^\[INFO\/SyncManager-4\] manager serving at '.+'$/), 1, stderr);
  assert.equal(count("[INFO/MainProcess] sending shutdown message to manager"), 1, stderr);
  assert.equal(count("[DEBUG/SyncManager-4] manager received shutdown message"), 1, stderr);
  assert.equal(count("[INFO/SyncManager-4] process exiting with exitcode 0"), 1, stderr);
});

test("logging: the logger's level, handlers, %-formatting and errors; a context carries both calls", {
  timeout: 10_000,
}, () => {
  const logger = getLogger();
  assert.ok(logger instanceof Logger);
  assert.equal(logger.name, "multiprocessing");
  assert.equal(getContext().getLogger(), logger);
  assert.equal(logger.level, 0, "NOTSET until set");
  assert.equal(logger.isEnabledFor(INFO), false);
  assert.equal(logger.isEnabledFor(WARNING), true, "WARNING and above, as under Python's root logger");
  const seen: LogRecord[] = [];
  const handler = (record: LogRecord) => seen.push(record);
  logger.addHandler(handler);
  try {
    logger.setLevel("DEBUG");
    assert.equal(logger.level, DEBUG);
    logger.info("manager serving at %r, %d of %s, 100%%", "addr", 2.7, "x");
    logger.debug("no arguments: %s stays");
    assert.deepEqual(seen.map((r) => [r.levelName, r.processName, r.message]), [
      ["INFO", "MainProcess", "manager serving at 'addr', 2 of x, 100%"],
      ["DEBUG", "MainProcess", "no arguments: %s stays"],
    ]);
    assert.throws(() => logger.setLevel(-1), /level must be an integer >= 0 or one of SUBDEBUG, DEBUG/);
    assert.throws(() => logToStderr("LOUD" as never), TypeError);
    assert.throws(() => logger.addHandler(3 as never), /handler must be a function/);
  } finally {
    logger.removeHandler(handler);
    logger.setLevel(0);
  }
  logger.setLevel(DEBUG);
  logger.info("after removeHandler");
  logger.setLevel(0);
  assert.equal(seen.length, 2, "a removed handler is not called");
});
