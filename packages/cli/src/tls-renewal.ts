// What a renewed certificate of the user's must still be, for `hurd up`'s
// clients to keep reaching what serves it. The CA and the names were
// checked when the hurd came up (up.ts's userTls); a renewal is checked the
// same way before it is served, so that a certificate from another CA, or
// one that dropped the name clients dial, is refused with a line on the log
// and the previous one kept, rather than served and every client of the
// hurd cut off at its next connection.
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";

/**
 * A renewal check (for CertWatch's `verify`): signed by the CA in `caFile`
 * (read at each renewal: a CA renewed alongside is the one clients read
 * too) and naming `host`. A reason to refuse, or null.
 */
export function renewalCheck(caFile: string, host: string): (cert: X509Certificate) => string | null {
  return (cert) => {
    let ca: X509Certificate;
    try {
      ca = new X509Certificate(readFileSync(caFile, "utf8"));
    } catch (e) {
      return `the CA in ${caFile} cannot be read as a PEM certificate (${(e as Error).message})`;
    }
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return `the new certificate is not signed by the CA in ${caFile}`;
    const named = isIP(host) ? cert.checkIP(host) : cert.checkHost(host);
    if (!named) return `the new certificate does not name ${host}, which clients dial (its names: ${cert.subjectAltName ?? "none"})`;
    return null;
  };
}
