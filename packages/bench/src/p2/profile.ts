// Reads a V8 .cpuprofile (node --cpu-prof) and says where the CPU went:
// the heaviest functions by self time, and self time per component
// (protobuf-es, Connect, Node's HTTP/2, the MACP core, ...).

import { readFile } from "node:fs/promises";

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileFrame {
  /** `function (file:line)`. */
  readonly frame: string;
  readonly component: string;
  /** Share of the non-idle samples whose top frame this is. */
  readonly selfShare: number;
}

export interface ProfileSummary {
  /** Non-idle CPU time in the analysed window, ms. */
  readonly busyMs: number;
  /** Idle share of the analysed window. */
  readonly idleShare: number;
  readonly top: readonly ProfileFrame[];
  /** Component → share of non-idle self time, largest first. */
  readonly components: readonly { readonly component: string; readonly share: number }[];
  /**
   * Component → share of non-idle samples with a frame of that component
   * anywhere on the stack (time spent in it and in what it called), largest
   * first. Shares overlap, so they do not add up to 100%.
   */
  readonly inclusive: readonly { readonly component: string; readonly share: number }[];
}

export interface SummariseOptions {
  /** How many frames to list. Default 15. */
  readonly top?: number;
  /** Only samples in the last `windowMs` before `endOffsetMs` from the profile's end. Default: all. */
  readonly windowMs?: number;
  /** How long before the end of the profile the window closes. Default 0. */
  readonly endOffsetMs?: number;
}

const COMPONENTS: readonly [RegExp, string][] = [
  [/node_modules\/@bufbuild\/protobuf\//, "protobuf-es"],
  [/node_modules\/@connectrpc\/connect-node\//, "connect-node"],
  [/node_modules\/@connectrpc\/connect\//, "connect"],
  [/node_modules\/@grpc\/grpc-js\//, "grpc-js"],
  [/node_modules\/pino/, "pino"],
  [/node_modules\/prom-client\//, "prom-client"],
  [/node_modules\/neverthrow\//, "neverthrow"],
  [/node_modules\/ajv/, "ajv"],
  [/packages\/core\//, "@macp/core"],
  [/packages\/connect\//, "@macp/connect"],
  [/packages\/grpc\//, "@macp/grpc"],
  [/packages\/auth\//, "@macp/auth"],
  [/packages\/runtime\//, "@macp/runtime"],
  [/packages\/proto\//, "@macp/proto"],
  [/packages\/bench\//, "bench"],
  [/^node:internal\/http2/, "node http2"],
  [/^node:(internal\/)?(stream|streams)/, "node streams"],
  [/^node:internal\/(timers|process\/task_queues|async_hooks)/, "node event loop"],
  [/^node:/, "node other"],
];

function componentOf(frame: CallFrame): string {
  if (frame.url === "") {
    if (frame.functionName === "(garbage collector)") return "gc";
    if (frame.functionName === "(program)") return "v8/native";
    return "native";
  }
  for (const [pattern, name] of COMPONENTS) if (pattern.test(frame.url)) return name;
  return "other";
}

function shortUrl(url: string): string {
  const modules = url.lastIndexOf("node_modules/");
  if (modules >= 0) return url.slice(modules + "node_modules/".length);
  const packages = url.lastIndexOf("packages/");
  if (packages >= 0) return url.slice(packages);
  return url.replace(/^file:\/\//, "");
}

export async function summariseCpuProfile(
  path: string,
  options: SummariseOptions = {},
): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(path, "utf8")) as CpuProfile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parents = new Map<number, number>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parents.set(child, node.id);
  }
  // The components on each node's stack, computed once per node.
  const stackComponents = new Map<number, ReadonlySet<string>>();
  const componentsOnStack = (nodeId: number): ReadonlySet<string> => {
    const known = stackComponents.get(nodeId);
    if (known !== undefined) return known;
    const node = nodes.get(nodeId);
    const parent = parents.get(nodeId);
    const set = new Set(parent === undefined ? [] : componentsOnStack(parent));
    if (node !== undefined && node.callFrame.url !== "") set.add(componentOf(node.callFrame));
    stackComponents.set(nodeId, set);
    return set;
  };
  const windowEnd = profile.endTime - (options.endOffsetMs ?? 0) * 1000;
  const windowStart =
    options.windowMs === undefined ? Number.NEGATIVE_INFINITY : windowEnd - options.windowMs * 1000;

  // timeDeltas[i] is the time from sample i-1 to sample i; charge it to sample i.
  const selfByNode = new Map<number, number>();
  const inclusiveByComponent = new Map<string, number>();
  let at = profile.startTime;
  let idle = 0;
  let busy = 0;
  profile.samples.forEach((nodeId, index) => {
    const delta = profile.timeDeltas[index] ?? 0;
    at += delta;
    if (at < windowStart || at > windowEnd) return;
    const node = nodes.get(nodeId);
    if (node === undefined) return;
    if (node.callFrame.functionName === "(idle)") {
      idle += delta;
      return;
    }
    busy += delta;
    selfByNode.set(nodeId, (selfByNode.get(nodeId) ?? 0) + delta);
    for (const component of componentsOnStack(nodeId)) {
      inclusiveByComponent.set(component, (inclusiveByComponent.get(component) ?? 0) + delta);
    }
  });

  const byFrame = new Map<string, { component: string; self: number }>();
  const byComponent = new Map<string, number>();
  for (const [nodeId, self] of selfByNode) {
    const frame = (nodes.get(nodeId) as ProfileNode).callFrame;
    const component = componentOf(frame);
    const name = `${frame.functionName || "(anonymous)"} (${frame.url === "" ? "native" : `${shortUrl(frame.url)}:${frame.lineNumber + 1}`})`;
    const entry = byFrame.get(name) ?? { component, self: 0 };
    entry.self += self;
    byFrame.set(name, entry);
    byComponent.set(component, (byComponent.get(component) ?? 0) + self);
  }
  const share = (value: number) => (busy === 0 ? 0 : value / busy);
  return {
    busyMs: busy / 1000,
    idleShare: busy + idle === 0 ? 0 : idle / (busy + idle),
    top: [...byFrame]
      .sort((a, b) => b[1].self - a[1].self)
      .slice(0, options.top ?? 15)
      .map(([frame, { component, self }]) => ({ frame, component, selfShare: share(self) })),
    components: [...byComponent]
      .sort((a, b) => b[1] - a[1])
      .map(([component, self]) => ({ component, share: share(self) })),
    inclusive: [...inclusiveByComponent]
      .sort((a, b) => b[1] - a[1])
      .map(([component, time]) => ({ component, share: share(time) })),
  };
}
