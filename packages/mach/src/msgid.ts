// Reading the MIG facts (hurd.mig.v1 options) out of ts-proto's generic
// definitions, where custom options arrive as raw unknown fields.

/** The shape of a ts-proto generic method definition that the runtime needs. */
export interface MethodDef {
  readonly name: string;
  readonly requestType: { encode(m: any): { finish(): Uint8Array }; decode(b: Uint8Array): any; fromPartial(o: any): any };
  readonly responseType: { encode(m: any): { finish(): Uint8Array }; decode(b: Uint8Array): any; fromPartial(o: any): any };
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  readonly options: { readonly _unknownFields?: Readonly<Record<number, readonly Uint8Array[]>> } | Record<string, unknown>;
}

export interface ServiceDef {
  readonly name: string;
  readonly fullName: string;
  readonly methods: Readonly<Record<string, MethodDef>>;
}

const MSGID_TAG = (50001 << 3) | 0;
const SIMPLE_TAG = (50002 << 3) | 0;

function varint(b: Uint8Array): number {
  let v = 0;
  let shift = 0;
  for (let i = 0; i < b.length && i < 10; i++) {
    v += (b[i]! & 0x7f) * 2 ** shift;
    if (!(b[i]! & 0x80)) break;
    shift += 7;
  }
  // int32 options are sign-extended to 64 bits on the wire.
  return v >= 2 ** 63 ? v - 2 ** 64 : v > 0x7fffffff && v < 2 ** 32 ? v | 0 : v;
}

function option(m: MethodDef, tag: number): number | undefined {
  const u = (m.options as { _unknownFields?: Record<number, Uint8Array[]> })._unknownFields;
  const v = u?.[tag]?.[0];
  return v ? varint(v) : undefined;
}

/** The method's MIG message id. Every method of a Hurd interface declares one. */
export function msgidOf(m: MethodDef): number {
  const id = option(m, MSGID_TAG);
  if (id === undefined) throw new Error(`method ${m.name} declares no (hurd.mig.v1.msgid)`);
  return id;
}

/** Whether the method is a MIG simpleroutine (one-way). */
export function isSimple(m: MethodDef): boolean {
  return option(m, SIMPLE_TAG) === 1;
}

export interface MethodInfo {
  key: string;
  def: MethodDef;
  msgid: number;
  simple: boolean;
  /** "hurd.process.v1.Process/GetPids", the gRPC path without its slash. */
  path: string;
}

const cache = new WeakMap<ServiceDef, { byKey: Map<string, MethodInfo>; byId: Map<number, MethodInfo> }>();

/** Methods of a service by key and by msgid (computed once per definition). */
export function methods(def: ServiceDef): { byKey: Map<string, MethodInfo>; byId: Map<number, MethodInfo> } {
  let c = cache.get(def);
  if (c) return c;
  c = { byKey: new Map(), byId: new Map() };
  for (const [key, m] of Object.entries(def.methods)) {
    const info: MethodInfo = { key, def: m, msgid: msgidOf(m), simple: isSimple(m), path: `${def.fullName}/${m.name}` };
    if (c.byId.has(info.msgid)) throw new Error(`${def.fullName}: msgid ${info.msgid} used twice`);
    c.byKey.set(key, info);
    c.byId.set(info.msgid, info);
  }
  cache.set(def, c);
  return c;
}
