// Bounds that several layers must agree on (config, the registry, the CLI and the stores), kept
// in a module with no imports so none of them has to import another to learn them.

/** The shortest access-token lifetime tollgate issues, in seconds. */
export const MIN_TTL = 60;
/**
 * The longest access-token lifetime, in seconds (24h). The stores keep a client's revocation
 * this long, since no token issued before it can outlive it.
 */
export const MAX_TTL = 86_400;
