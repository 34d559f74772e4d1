// The benchmark CLIs' argument handling: `--help` prints the usage; an
// unknown option or a bad value gets one line naming it, then the usage, on
// stderr, and exit status 2, rather than a stack trace.

import { type ParseArgsConfig, parseArgs } from "node:util";

type Options = NonNullable<ParseArgsConfig["options"]>;

export interface CommandLine {
  /** `program: message`, then the usage, on stderr; exits with status 2. */
  refuse(message: string): never;
  /** A number given as `--name`: undefined when absent; refused unless `accept` holds. */
  number(
    name: string,
    text: string | undefined,
    accept: { readonly least: number; readonly whole: boolean },
  ): number | undefined;
}

/** Options that each take a string value (`--name value`), by name. */
export function stringOptions<const K extends string>(
  ...names: K[]
): { readonly [N in K]: { readonly type: "string" } } {
  return Object.fromEntries(names.map((name) => [name, { type: "string" }])) as {
    readonly [N in K]: { readonly type: "string" };
  };
}

/** What `readCommandLine` returns for each option: a boolean flag or a string value. */
export type OptionValues<O extends Options> = {
  [K in keyof O]?: O[K] extends { readonly type: "boolean" } ? boolean : string;
};

/**
 * Parses `process.argv` with `options` (plus `--help`). Exits after printing
 * `usage` for `--help` (status 0) or a refused command line (status 2).
 */
export function readCommandLine<const O extends Options>(
  program: string,
  usage: string,
  options: O,
): { readonly values: OptionValues<O>; readonly commandLine: CommandLine } {
  function refuse(message: string): never {
    process.stderr.write(`${program}: ${message}\n\n${usage}`);
    process.exit(2);
  }
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({ options: { ...options, help: { type: "boolean" } } }));
  } catch (error) {
    refuse(error instanceof Error ? error.message : String(error));
  }
  if (values.help === true) {
    process.stdout.write(usage);
    process.exit(0);
  }
  const commandLine: CommandLine = {
    refuse,
    number(name, text, { least, whole }) {
      if (text === undefined) return undefined;
      const value = Number(text);
      const kind = whole ? "a whole number" : "a number";
      if (text.trim() === "" || !Number.isFinite(value) || (whole && !Number.isInteger(value))) {
        refuse(`--${name} must be ${kind}, not ${JSON.stringify(text)}`);
      }
      if (value < least) refuse(`--${name} must be ${kind} of at least ${least}, not ${text}`);
      return value;
    },
  };
  return { values: values as OptionValues<O>, commandLine };
}
