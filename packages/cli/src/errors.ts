// The CLI's own error (a message for the user, printed as is), apart from
// session.ts so that main.ts can know it without loading gRPC.
export class CliError extends Error {
  override readonly name = "CliError";
}
