/**
 * The library's own log, as Python's `multiprocessing.get_logger()` and
 * `log_to_stderr()`: lifecycle messages (a child calling its target and
 * exiting, pool workers added and cleaned up, a manager serving and shutting
 * down) at Python's levels and in its words, off until asked for.
 *
 * The level and whether to print to stderr live in one shared cell of the
 * whole process tree, so `logToStderr()` in any process turns the log on in
 * every process, children started later included (Python's spawn passes the
 * same two settings to each child). When it is off, a message costs one
 * function call and one load: nothing is formatted.
 *
 * This module sits below `process.ts`, which calls it; process.ts hands it the
 * shared cell and the current process's name ({@linkcode attachLogging}).
 *
 * @module
 */

/** Python's `multiprocessing.SUBDEBUG`. */
export const SUBDEBUG = 5;
/** Python's `logging.DEBUG`. */
export const DEBUG = 10;
/** Python's `logging.INFO`. */
export const INFO = 20;
/** Python's `multiprocessing.SUBWARNING`. */
export const SUBWARNING = 25;
/** Python's `logging.WARNING`. */
export const WARNING = 30;
/** Python's `logging.ERROR`. */
export const ERROR = 40;
/** Python's `logging.CRITICAL`. */
export const CRITICAL = 50;

/** A level's name, as `logToStderr("DEBUG")` accepts. */
export type LevelName = "SUBDEBUG" | "DEBUG" | "INFO" | "SUBWARNING" | "WARNING" | "ERROR" | "CRITICAL";

const names: Record<number, LevelName> = {
  [SUBDEBUG]: "SUBDEBUG",
  [DEBUG]: "DEBUG",
  [INFO]: "INFO",
  [SUBWARNING]: "SUBWARNING",
  [WARNING]: "WARNING",
  [ERROR]: "ERROR",
  [CRITICAL]: "CRITICAL",
};

/** One message, as a handler receives it. */
export interface LogRecord {
  /** The level, such as {@linkcode INFO}. */
  level: number;
  /** The level's name, such as `"INFO"` (`"Level 15"` for one without a name). */
  levelName: string;
  /** The name of the process that logged it, such as `"MainProcess"` or `"Process-1"`. */
  processName: string;
  /** The message with its arguments filled in. */
  message: string;
}

/** Receives each record the logger lets through. */
export type LogHandler = (record: LogRecord) => void;

// The shared cells: the level (0 = Python's NOTSET: the root's WARNING applies), and 1 once logToStderr was called.
const LEVEL = 0;
const STDERR = 1;
const NOTSET_LEVEL = WARNING;

let shared: () => Int32Array = () => local;
const local = new Int32Array(2);
let processName: () => string = () => "MainProcess";

/**
 * For process.ts: the cells the process tree shares and the name of this
 * process. Before it is called (in no program: process.ts calls it when it
 * loads) the log is this thread's own.
 */
export function attachLogging(cells: () => Int32Array, name: () => string): void {
  shared = cells;
  processName = name;
}

function effective(): number {
  return Atomics.load(shared(), LEVEL) || NOTSET_LEVEL;
}

function readLevel(level: unknown, what: string): number {
  if (typeof level === "string" && Object.values(names).includes(level as LevelName)) {
    return Number(Object.keys(names).find((k) => names[Number(k)] === level));
  }
  if (typeof level === "number" && Number.isInteger(level) && level >= 0) return level;
  throw new TypeError(
    `${what}: level must be an integer >= 0 or one of ${Object.values(names).join(", ")}, got ${String(level)}`,
  );
}

/** Python's %-formatting of a log message: %s, %d, %r and %%. */
function format(message: string, args: unknown[]): string {
  if (args.length === 0) return message;
  let next = 0;
  return message.replace(/%([sdr%])/g, (all, code: string) => {
    if (code === "%") return "%";
    if (next >= args.length) return all;
    const arg = args[next++];
    if (code === "d") return String(Math.trunc(Number(arg)));
    if (code === "r") return typeof arg === "string" ? `'${arg}'` : String(arg);
    return String(arg);
  });
}

function toStderr(record: LogRecord): void {
  // Python's DEFAULT_LOGGING_FORMAT: '[%(levelname)s/%(processName)s] %(message)s'.
  console.error(`[${record.levelName}/${record.processName}] ${record.message}`);
}

/**
 * The library's logger, as the one Python's `get_logger()` returns (named
 * `"multiprocessing"`). Its level is the whole process tree's.
 *
 * @example
 * ```ts
 * import { getLogger, INFO } from "@mp/multiprocessing";
 * const logger = getLogger();
 * logger.setLevel(INFO);
 * logger.addHandler((record) => console.log(record.levelName, record.message));
 * logger.info("hello %s", "world"); // INFO hello world
 * ```
 */
export class Logger {
  /** Always `"multiprocessing"`, as Python's. */
  readonly name: string = "multiprocessing";
  #handlers: LogHandler[] = [];

  /** The level set, 0 (NOTSET) when none was: then WARNING and above go through, as under Python's root logger. */
  get level(): number {
    return Atomics.load(shared(), LEVEL);
  }

  /**
   * Sets the level of the whole process tree.
   *
   * @throws {TypeError} for a level that is neither an integer >= 0 nor a level's name.
   *
   * @example
   * ```ts
   * import { DEBUG, getLogger } from "@mp/multiprocessing";
   * getLogger().setLevel(DEBUG);
   * ```
   */
  setLevel(level: number | LevelName): void {
    Atomics.store(shared(), LEVEL, readLevel(level, "Logger.setLevel"));
  }

  /**
   * Whether a message of `level` would go through.
   *
   * @example
   * ```ts
   * import { DEBUG, getLogger } from "@mp/multiprocessing";
   * console.log(getLogger().isEnabledFor(DEBUG)); // false until a level of DEBUG or lower is set
   * ```
   */
  isEnabledFor(level: number): boolean {
    return level >= effective();
  }

  /**
   * Adds a handler, called with each record that goes through (in this process).
   *
   * @example
   * ```ts
   * import { getLogger } from "@mp/multiprocessing";
   * const seen: string[] = [];
   * getLogger().addHandler((record) => seen.push(record.message));
   * ```
   */
  addHandler(handler: LogHandler): void {
    if (typeof handler !== "function") throw new TypeError("Logger.addHandler: handler must be a function");
    if (!this.#handlers.includes(handler)) this.#handlers.push(handler);
  }

  /**
   * Removes a handler added with `addHandler`.
   *
   * @example
   * ```ts
   * import { getLogger } from "@mp/multiprocessing";
   * const handler = () => {};
   * getLogger().addHandler(handler);
   * getLogger().removeHandler(handler);
   * ```
   */
  removeHandler(handler: LogHandler): void {
    this.#handlers = this.#handlers.filter((h) => h !== handler);
  }

  /**
   * Logs `message` (with Python's `%s`, `%d`, `%r` filled from `args`) at `level`.
   *
   * @example
   * ```ts
   * import { getLogger, WARNING } from "@mp/multiprocessing";
   * getLogger().log(WARNING, "%d workers left", 3);
   * ```
   */
  log(level: number, message: string, ...args: unknown[]): void {
    if (level < effective()) return;
    const record: LogRecord = {
      level,
      levelName: names[level] ?? `Level ${level}`,
      processName: processName(),
      message: format(String(message), args),
    };
    const stderr = Atomics.load(shared(), STDERR) === 1;
    if (stderr) toStderr(record);
    for (const handler of this.#handlers) handler(record);
    // Python's last resort: with no handler at all, a warning or worse still reaches stderr.
    if (!stderr && this.#handlers.length === 0 && level >= WARNING) console.error(record.message);
  }

  /**
   * Logs at DEBUG.
   *
   * @example
   * ```ts
   * import { getLogger } from "@mp/multiprocessing";
   * getLogger().debug("added worker");
   * ```
   */
  debug(message: string, ...args: unknown[]): void {
    this.log(DEBUG, message, ...args);
  }

  /**
   * Logs at INFO.
   *
   * @example
   * ```ts
   * import { getLogger } from "@mp/multiprocessing";
   * getLogger().info("manager serving at %r", "local");
   * ```
   */
  info(message: string, ...args: unknown[]): void {
    this.log(INFO, message, ...args);
  }

  /**
   * Logs at WARNING.
   *
   * @example
   * ```ts
   * import { getLogger } from "@mp/multiprocessing";
   * getLogger().warning("queue is nearly full");
   * ```
   */
  warning(message: string, ...args: unknown[]): void {
    this.log(WARNING, message, ...args);
  }

  /**
   * Logs at ERROR.
   *
   * @example
   * ```ts
   * import { getLogger } from "@mp/multiprocessing";
   * getLogger().error("task %d failed", 7);
   * ```
   */
  error(message: string, ...args: unknown[]): void {
    this.log(ERROR, message, ...args);
  }

  /**
   * Logs at CRITICAL.
   *
   * @example
   * ```ts
   * import { getLogger } from "@mp/multiprocessing";
   * getLogger().critical("giving up");
   * ```
   */
  critical(message: string, ...args: unknown[]): void {
    this.log(CRITICAL, message, ...args);
  }
}

const logger = new Logger();

/**
 * The library's logger, as Python's `multiprocessing.get_logger()`: off until
 * a level (or {@linkcode logToStderr}) is set.
 *
 * @example
 * ```ts
 * import { getLogger } from "@mp/multiprocessing";
 * console.log(getLogger().name); // "multiprocessing"
 * ```
 */
export function getLogger(): Logger {
  return logger;
}

/**
 * Prints the library's messages to stderr as
 * `[LEVEL/ProcessName] message`, in every process of the tree, as Python's
 * `log_to_stderr()`; sets the level when one is given.
 *
 * @throws {TypeError} for a level that is neither an integer >= 0 nor a level's name.
 *
 * @example
 * ```ts
 * import { INFO, logToStderr, Process } from "@mp/multiprocessing";
 *
 * export function work() {}
 *
 * if (import.meta.main) {
 *   logToStderr(INFO);
 *   const p = new Process({ target: work });
 *   p.start(); // [INFO/Process-1] child process calling self.run()
 *   await p.join(); // [INFO/Process-1] process exiting with exitcode 0
 * }
 * ```
 */
export function logToStderr(level?: number | LevelName): Logger {
  if (level !== undefined && level !== null) logger.setLevel(level);
  Atomics.store(shared(), STDERR, 1);
  return logger;
}

/** For the library's call sites: a DEBUG message, formatted only if it goes through. */
export function debug(message: string, ...args: unknown[]): void {
  if (DEBUG >= effective()) logger.log(DEBUG, message, ...args);
}

/** For the library's call sites: an INFO message, formatted only if it goes through. */
export function info(message: string, ...args: unknown[]): void {
  if (INFO >= effective()) logger.log(INFO, message, ...args);
}
