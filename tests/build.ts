// Running the compiled programs (dist/, what `npm ci` builds and the images
// run) from a test: `npm test` puts the @hurdmesh/source condition in
// NODE_OPTIONS so that the TypeScript sources run; a compiled program must
// resolve workspace packages to dist/ as it would in production.
export const SOURCE_CONDITION = "--conditions=@hurdmesh/source";

/** `env` without the source condition in NODE_OPTIONS. */
export function compiledEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const opts = (env.NODE_OPTIONS ?? "").split(/\s+/).filter((o) => o && o !== SOURCE_CONDITION).join(" ");
  const { NODE_OPTIONS: _, ...rest } = env;
  return opts ? { ...rest, NODE_OPTIONS: opts } : rest;
}
