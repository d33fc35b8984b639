// What the repository's own packages and services share about the runtime
// but a program written against it does not need (as nats.js's
// internal_mod.ts): the wire's subjects and codecs, the hooks telemetry
// plugs into. Imported as @hurdmesh/mach/internal.
export { subjectsOf, parseSubject, permissionsOf, ROOT, INBOX_PREFIX, ROOT_HURD, type SystemSubjects, type ParsedSubject, type Role, type Permissions } from "./subjects.js";
