/**
 * The examples and what each must print: `examples/NAME.expected` holds the
 * lines, compared as a multiset (children print in any order); `{n}` in an
 * expected line stands for an integer (a pid), `{...}` for a run of dots
 * (a wait that timed out as many times as the scheduler made it).
 */
import { readdirSync, readFileSync } from "node:fs";
import { root } from "./runtimes.ts";

export interface Example {
  name: string;
  file: string;
  expected: string[];
}

export function examples(): Example[] {
  return readdirSync(`${root}examples`)
    .filter((file) => file.endsWith(".expected"))
    .sort()
    .map((file) => {
      const name = file.slice(0, -".expected".length);
      const expected = readFileSync(`${root}examples/${file}`, "utf8").replace(/\n$/, "").split("\n");
      return { name, file: `examples/${name}.ts`, expected };
    });
}

function pattern(line: string): RegExp {
  const escaped = line.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replaceAll("\\{n\\}", "-?\\d+").replaceAll(
    "\\{\\.\\.\\.\\}",
    "\\.*",
  );
  return new RegExp(`^${escaped}$`);
}

/** What is wrong with `stdout` against `expected`, or an empty list. */
export function compare(stdout: string, expected: string[]): string[] {
  const actual = stdout.replace(/\n$/, "").split("\n");
  const unmatched = expected.map((line) => ({ line, re: pattern(line) }));
  const extra: string[] = [];
  for (const line of actual) {
    const index = unmatched.findIndex(({ re }) => re.test(line));
    if (index === -1) extra.push(line);
    else unmatched.splice(index, 1);
  }
  return [
    ...unmatched.map(({ line }) => `missing: ${line}`),
    ...extra.map((line) => `unexpected: ${line}`),
  ];
}
