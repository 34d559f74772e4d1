/**
 * The authenticated caller of a runtime method. Hosts resolve it from
 * credentials (see @macp/auth) and pass it to every method that needs it; the
 * core never reads credentials itself.
 */
export interface Identity {
  /** The agent id; every envelope this caller sends carries it as `sender`. */
  readonly sender: string;
  /** Modes the caller may use; `null` allows every mode. */
  readonly allowedModes: ReadonlySet<string> | null;
  /** Whether the caller may send SessionStart. */
  readonly canStartSessions: boolean;
  /** Cap on OPEN sessions this caller initiated; `null` for no cap. */
  readonly maxOpenSessions: number | null;
  /** Whether the caller may change the mode and policy registries. */
  readonly canManageModeRegistry: boolean;
  /** Observers may read any session (GetSession, passive subscribe) but not send into it. */
  readonly isObserver: boolean;
}

/** Options of {@link createIdentity}; everything but `sender` has a default. */
export interface IdentityOptions {
  sender: string;
  /** Default `null` (any mode). */
  allowedModes?: Iterable<string> | null;
  /** Default `true`. */
  canStartSessions?: boolean;
  /** Default `null` (no cap). */
  maxOpenSessions?: number | null;
  /** Default `false`. */
  canManageModeRegistry?: boolean;
  /** Default `false`. */
  isObserver?: boolean;
}

export function createIdentity(options: IdentityOptions): Identity {
  return {
    sender: options.sender,
    allowedModes: options.allowedModes == null ? null : new Set(options.allowedModes),
    canStartSessions: options.canStartSessions ?? true,
    maxOpenSessions: options.maxOpenSessions ?? null,
    canManageModeRegistry: options.canManageModeRegistry ?? false,
    isObserver: options.isObserver ?? false,
  };
}

/**
 * The identity dev mode gives any bearer value: full privileges, no mode
 * restriction, no open-session cap.
 */
export function createDevIdentity(sender: string): Identity {
  return createIdentity({ sender, canManageModeRegistry: true });
}

/**
 * Why a caller could not be authenticated. Send reports it as an
 * UNAUTHENTICATED NACK only after the envelope's shape checks, so the core
 * takes it in place of an identity rather than the host rejecting early.
 */
export interface AuthenticationFailure {
  readonly unauthenticated: string;
}

/** What a host passes for the caller: an identity, or the reason there is none. */
export type Caller = Identity | AuthenticationFailure;

export function isAuthenticated(caller: Caller): caller is Identity {
  return (caller as Identity).sender !== undefined;
}
