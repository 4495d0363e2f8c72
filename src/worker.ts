/**
 * The module every process's worker thread starts from. It loads the whole
 * library, so that every shareable kind can be revived, and then serves the
 * bootstrap that its parent sends.
 *
 * @module
 */
import "../mod.ts";
import { serveChild } from "./process.ts";

serveChild();
