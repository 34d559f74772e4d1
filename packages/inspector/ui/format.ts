import { SessionState } from "@macp/proto";

export function stateName(state: SessionState): string {
  switch (state) {
    case SessionState.OPEN:
      return "OPEN";
    case SessionState.RESOLVED:
      return "RESOLVED";
    case SessionState.EXPIRED:
      return "EXPIRED";
    case SessionState.SUSPENDED:
      return "SUSPENDED";
    case SessionState.CANCELLED:
      return "CANCELLED";
    default:
      return "UNSPECIFIED";
  }
}

/** "4m 05s left", "expired" or "—" when there is no deadline to show. */
export function ttlLeft(state: SessionState, expiresAtMs: number, nowMs: number): string {
  if (state !== SessionState.OPEN && state !== SessionState.SUSPENDED) return "—";
  const left = expiresAtMs - nowMs;
  if (left <= 0) return "due";
  const seconds = Math.floor(left / 1000);
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const rest = String(seconds % 60).padStart(2, "0");
  return hours > 0 ? `${hours}h ${String(minutes).padStart(2, "0")}m` : `${minutes}m ${rest}s`;
}

export function timeOfDay(unixMs: bigint | number): string {
  const date = new Date(Number(unixMs));
  return `${date.toLocaleTimeString(undefined, { hour12: false })}.${String(date.getMilliseconds()).padStart(3, "0")}`;
}

/** Pretty JSON, or the text as it is when it is not JSON. */
export function pretty(json: string): string {
  if (json === "") return "";
  try {
    return JSON.stringify(JSON.parse(json), null, 2);
  } catch {
    return json;
  }
}

/** A random UUID v4, also outside secure contexts (where crypto.randomUUID is missing). */
export function uuidV4(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
