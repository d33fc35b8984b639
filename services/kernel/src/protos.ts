// The proto files the edge serves, read when first needed: the gateway
// reads its interfaces' MIG facts from them (which fields are rights; ts-proto
// keeps no field options), and reflection answers with their descriptors.
// Parsing them costs tens of milliseconds of CPU that the edge's start, and
// `hurd up`, need not pay for a service someone calls now and then.
//
// The descriptors are the files as written: one FileDescriptorProto per
// .proto file, under its own name and with its imports, down to
// google/protobuf/descriptor.proto. (proto-loader, which reflection would
// otherwise be given, merges every package into one made-up file and drops
// the imports, so that a client cannot find mig.proto's options by name.)
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, sep } from "node:path";
import type * as Protobuf from "protobufjs";
import type { PackageDefinition } from "@grpc/proto-loader";
import type { ServiceDef } from "@hurdmesh/mach/internal";

const require = createRequire(import.meta.url);
const DESCRIPTOR_PROTO = "google/protobuf/descriptor.proto";

interface DescriptorModule {
  FileDescriptorProto: Protobuf.Type;
}
type Described = Protobuf.ReflectionObject & { toDescriptor(edition?: string): Protobuf.Message };

export class Protos {
  private parsed: Protobuf.Root | null = null;
  private descriptors: Uint8Array[] | null = null;

  /** `root` is the proto/ folder; `files` answers the ones served, relative to it (their imports come along). */
  constructor(
    readonly root: string,
    private readonly files: () => readonly string[],
  ) {}

  /** The files, parsed and resolved (protobufjs; names as written, snake_case fields included). */
  get parsedRoot(): Protobuf.Root {
    if (this.parsed) return this.parsed;
    const pb = require("protobufjs") as typeof Protobuf;
    const root = new pb.Root();
    root.resolvePath = (_origin, target) => this.pathOf(target);
    // descriptor.proto from its file, not from protobufjs's bundled copy
    // (which proto-loader registers once it is loaded, camelCased and with
    // no file name): reflection answers with the file as written.
    const descriptorProto = this.pathOf(DESCRIPTOR_PROTO);
    const parse = pb.parse as typeof pb.parse & { filename: string | null };
    parse.filename = descriptorProto;
    try {
      pb.parse(readFileSync(descriptorProto, "utf8"), root, { keepCase: true });
    } finally {
      parse.filename = null;
    }
    // Both names an import of it can take in protobufjs's loader.
    root.files.push(DESCRIPTOR_PROTO, descriptorProto);
    root.loadSync([...this.files()], { keepCase: true });
    root.resolveAll();
    return (this.parsed = root);
  }

  /** Every file and every file it imports, as encoded FileDescriptorProtos. */
  fileDescriptors(): Uint8Array[] {
    if (this.descriptors) return this.descriptors;
    const root = this.parsedRoot;
    const { FileDescriptorProto } = require("protobufjs/ext/descriptor") as DescriptorModule;
    const pb = require("protobufjs") as typeof Protobuf;
    // Top-level definitions by the file that declares them.
    const byFile = new Map<string, { pkg: string; items: Described[] }>();
    const walk = (ns: Protobuf.NamespaceBase) => {
      for (const o of ns.nestedArray) {
        if (o instanceof pb.Type || o instanceof pb.Enum || o instanceof pb.Service || o instanceof pb.Field) {
          if (!o.filename) throw new Error(`no file is known to declare ${o.fullName}`);
          const name = this.nameOf(o.filename);
          let f = byFile.get(name);
          if (!f) byFile.set(name, (f = { pkg: ns.fullName.replace(/^\./, ""), items: [] }));
          f.items.push(o as unknown as Described);
        } else if (o instanceof pb.Namespace) walk(o);
      }
    };
    walk(root);
    const out: Uint8Array[] = [];
    for (const [name, f] of byFile) {
      const text = readFileSync(this.pathOf(name), "utf8");
      const edition = /^\s*syntax\s*=\s*"proto3"/m.test(text) ? "proto3" : "proto2";
      const file: Record<string, unknown> = {
        name,
        package: f.pkg,
        dependency: [...text.matchAll(/^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;/gm)].map((m) => m[1]),
        messageType: f.items.filter((o) => o instanceof pb.Type).map((o) => withoutSisters(o.toDescriptor(edition) as unknown as MessageDescriptor)),
        enumType: f.items.filter((o) => o instanceof pb.Enum).map((o) => o.toDescriptor(edition)),
        service: f.items.filter((o) => o instanceof pb.Service).map((o) => o.toDescriptor(edition)),
        extension: f.items.filter((o) => o instanceof pb.Field).map((o) => o.toDescriptor(edition)),
      };
      if (edition === "proto3") file.syntax = "proto3";
      out.push(FileDescriptorProto.encode(FileDescriptorProto.fromObject(file)).finish());
    }
    return (this.descriptors = out);
  }

  /** What @grpc/reflection takes: any object whose values carry fileDescriptorProtos. */
  reflectionPackage(): PackageDefinition {
    return { files: { fileDescriptorProtos: this.fileDescriptors().map((b) => Buffer.from(b)) } } as unknown as PackageDefinition;
  }

  /** A file's path on disk from its import name (google/protobuf/ from protobufjs's copy). */
  private pathOf(name: string): string {
    return name.startsWith("google/protobuf/") ? require.resolve(`protobufjs/${name}`) : join(this.root, name);
  }

  /** A file's import name from its path on disk. */
  private nameOf(path: string): string {
    const norm = path.split(sep).join("/");
    const root = this.root.split(sep).join("/").replace(/\/$/, "");
    if (norm.startsWith(`${root}/`)) return norm.slice(root.length + 1);
    const g = norm.lastIndexOf("/google/protobuf/");
    return g >= 0 ? norm.slice(g + 1) : norm;
  }
}

interface MessageDescriptor {
  field: Array<{ name: string }>;
  nestedType: MessageDescriptor[];
  extensionRange: Array<{ end: number }>;
  reservedRange: Array<{ end: number }>;
}

/**
 * A message's descriptor as protoc writes it, from protobufjs's. protobufjs
 * adds to an extended message (FieldOptions, for mig.proto's options) a
 * field per extension, named by the extension's full name
 * (".hurd.mig.v1.port"), which belongs to the file that declares the
 * extension, not to descriptor.proto; and it writes extension and reserved
 * ranges with their inclusive ends, where a descriptor's are exclusive (a
 * descriptor pool refuses `reserved 10` written as 10 to 10).
 */
function withoutSisters(d: MessageDescriptor): MessageDescriptor {
  d.field = d.field.filter((f) => !f.name.startsWith("."));
  for (const r of d.extensionRange) r.end += 1;
  for (const r of d.reservedRange) r.end += 1;
  d.nestedType.forEach(withoutSisters);
  return d;
}

/** The proto files of these services' packages, relative to `root` (hurd/process/v1/process.proto, ...). */
export function protoFilesOf(root: string, defs: readonly ServiceDef[]): string[] {
  const files = new Set<string>();
  for (const def of defs) {
    const dir = def.fullName.split(".").slice(0, -1).join("/");
    for (const f of readdirSync(join(root, dir))) if (f.endsWith(".proto")) files.add(`${dir}/${f}`);
  }
  return [...files];
}
