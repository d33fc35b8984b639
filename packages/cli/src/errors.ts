// The CLI's own errors (a message for the user, printed as is), apart from
// session.ts so that main.ts can know them without loading gRPC. Exit
// statuses as coreutils and procps have them: 1 for a failure, 2 for a
// command line the command cannot take.
export class CliError extends Error {
  override readonly name: string = "CliError";
  readonly exitCode: number = 1;
}

/** A command line the command cannot take: one line, "try --help", status 2. */
export class UsageError extends CliError {
  override readonly name = "UsageError";
  override readonly exitCode = 2;
}
