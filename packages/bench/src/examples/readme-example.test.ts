// The README's example is readme-example.ts, shown verbatim. It measures, so no test runs it
// (timing never runs in the tests): it is compiled with the package, which type-checks it.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const read = (path: string) => readFileSync(new URL(path, import.meta.url), "utf8");

/** The file from its first import on: the part the README shows. */
function body(path: string): string {
  const source = read(path);
  return source.slice(source.indexOf("import")).trim();
}

describe("packages/bench/README.md", () => {
  it("shows the example file verbatim", () => {
    expect(read("../../README.md")).toContain(body("./readme-example.ts"));
  });

  it("runs the file `tsc -b` builds from the example", () => {
    // rootDir src → outDir dist: src/examples/readme-example.ts is built to the path the README runs.
    const tsconfig = JSON.parse(read("../../tsconfig.json")) as {
      include: string[];
      compilerOptions: { rootDir: string; outDir: string };
    };
    expect(tsconfig.include).toContain("src");
    expect(tsconfig.compilerOptions).toMatchObject({ rootDir: "src", outDir: "dist" });
    expect(read("../../README.md")).toContain("./packages/bench/dist/examples/readme-example.js");
  });

  it("exports the function the README calls", async () => {
    const example = await import("./readme-example.js");
    expect(typeof example.runShortBenchmarks).toBe("function");
    expect(read("../../README.md")).toContain("runShortBenchmarks()");
  });
});
