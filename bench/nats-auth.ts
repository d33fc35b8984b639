// `npx tsx bench/nats-auth.ts [--json]`
//
// What NATS authorization costs (issue 15): minting a task's credentials in
// the kernel (a native key pair and a natively signed user JWT), the same
// with @nats-io/jwt's pure-JavaScript signer for comparison, the client's
// answer to the server's nonce at connect, and, when nats-server is on PATH,
// how long a revoked user stays connected after revoke() is called. Not part
// of `npm run bench` until the kernel mints credentials; then its task
// creation rows carry the cost.
import { encodeUser as natsEncodeUser } from "@nats-io/jwt";
import { createAccount, createUser } from "@nats-io/nkeys";
import { jwtAuthenticator } from "@nats-io/transport-node";
import { mintUser, userAuthenticator } from "../packages/mach/src/nats-auth/creds.js";
import { encodeUser, nowSeconds } from "../packages/mach/src/nats-auth/jwt.js";
import { NKey } from "../packages/mach/src/nats-auth/nkeys.js";
import { natsRoles } from "../packages/mach/src/nats-auth/roles.js";
import { startFabric } from "../packages/mach/src/nats-auth/test-server.js";

const json = process.argv.includes("--json");

interface Row {
  name: string;
  n: number;
  p50_ms: number;
  p99_ms: number;
  mean_ms: number;
}

function stats(name: string, samples: number[]): Row {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  const r = (v: number) => Math.round(v * 10_000) / 10_000;
  return { name, n: s.length, p50_ms: r(at(0.5)), p99_ms: r(at(0.99)), mean_ms: r(s.reduce((a, b) => a + b, 0) / s.length) };
}

function time(n: number, warm: number, f: (i: number) => void): number[] {
  for (let i = 0; i < warm; i++) f(i);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    f(i);
    out.push(performance.now() - t);
  }
  return out;
}

function print(r: Row): void {
  if (json) console.log(JSON.stringify(r));
  else console.log(`${r.name.padEnd(58)} n=${String(r.n).padStart(5)}  p50 ${r.p50_ms.toFixed(4)} ms  p99 ${r.p99_ms.toFixed(4)} ms  mean ${r.mean_ms.toFixed(4)} ms`);
}

const roles = natsRoles("bench");
const account = NKey.create("account");
const signer = NKey.create("account");
const exp = nowSeconds() + 3600;

print(stats("mint a task's credentials (key pair + user JWT, native)", time(5000, 500, (i) => mintUser(signer, account.publicKey, `task ${i}`, roles.task(i), exp))));
const user = NKey.create("user");
print(stats("encode + sign one user JWT (native)", time(5000, 500, (i) => encodeUser(user.publicKey, signer, { name: `task ${i}`, account: account.publicKey, permissions: roles.task(i), exp }))));

const theirAccount = createAccount();
const theirUser = createUser();
const theirs: number[] = [];
for (let i = 0; i < 12; i++) {
  const t = performance.now();
  await natsEncodeUser(`task ${i}`, theirUser, theirAccount, { pub: { allow: roles.task(i).pub as string[] }, sub: { allow: roles.task(i).sub as string[] } }, { exp });
  theirs.push(performance.now() - t);
}
print(stats("@nats-io/jwt encodeUser (pure-JS ed25519), for comparison", theirs.slice(2)));

const creds = mintUser(signer, account.publicKey, "task 1", roles.task(1), exp);
const native = userAuthenticator(creds);
print(stats("answer a connect nonce (native authenticator)", time(2000, 200, (i) => native(`nonce${i}`))));
const js = jwtAuthenticator(creds.jwt, new TextEncoder().encode(creds.seed));
print(stats("answer a connect nonce (nats.js jwtAuthenticator)", time(10, 2, (i) => js(`nonce${i}`))));

// Revocation: from revoke() to the client seeing its connection closed.
let f;
try {
  f = await startFabric({ system: "bench" });
} catch (e) {
  console.error(`no revocation row: ${(e as Error).message.split("\n")[0]}`);
}
if (f) {
  try {
    const cut: number[] = [];
    const resolved: number[] = [];
    for (let i = 0; i < 30; i++) {
      const u = f.mint(`task ${i}`, f.roles.task(i), nowSeconds() + 3600);
      const nc = await f.connect(u);
      const t = performance.now();
      const closed = nc.closed().then(() => performance.now() - t);
      await f.revocations.revoke(u.publicKey, u.exp);
      resolved.push(performance.now() - t);
      cut.push(await closed);
    }
    print(stats("revoke(): until the server has applied it (resolves)", resolved));
    print(stats("revoke(): until the revoked client sees its connection closed", cut));
  } finally {
    await f.stop();
  }
}
