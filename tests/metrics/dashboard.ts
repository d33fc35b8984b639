// The provisioned Grafana dashboard (deploy/dashboards/grafana/dashboards/
// hurdmesh.json) read as Grafana reads it: every panel's PromQL queries and
// the dashboard's variables, and the queries with the variables and
// Grafana's interval macros put in as Grafana would before it sends them to
// Prometheus.
import { readFileSync } from "node:fs";

const DASHBOARD = new URL("../../deploy/dashboards/grafana/dashboards/hurdmesh.json", import.meta.url);

export interface DashboardQuery {
  panel: string;
  refId: string;
  expr: string;
}

export interface DashboardVariable {
  name: string;
  /** The query Grafana runs for the variable's values, as `label_values(metric, label)`. */
  definition: string;
  includeAll: boolean;
  /** What "All" stands for (Grafana's allValue). */
  allValue: string | undefined;
}

interface RawDashboard {
  panels: { title: string; type: string; targets?: { expr?: string; refId?: string }[] }[];
  templating: { list: { name: string; type: string; definition?: string; includeAll?: boolean; allValue?: string }[] };
}

function load(): RawDashboard {
  return JSON.parse(readFileSync(DASHBOARD, "utf8")) as RawDashboard;
}

/** Every query of every panel, with its panel's title and refId. */
export function dashboardQueries(): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  for (const p of load().panels)
    for (const t of p.targets ?? []) {
      if (!t.expr) throw new Error(`panel "${p.title}" has a target without a PromQL expr`);
      out.push({ panel: p.title, refId: t.refId ?? "A", expr: t.expr });
    }
  return out;
}

export function dashboardVariables(): DashboardVariable[] {
  return load().templating.list.map((v) => {
    if (v.type !== "query" || !v.definition) throw new Error(`dashboard variable ${v.name} is not a label_values query`);
    return { name: v.name, definition: v.definition, includeAll: v.includeAll ?? false, allValue: v.allValue };
  });
}

/** label_values(metric, label) split into its selector and its label. */
export function labelValuesQuery(definition: string): { match: string; label: string } {
  const m = /^label_values\(\s*([^,]+?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$/.exec(definition.trim());
  if (!m) throw new Error(`not a label_values(metric, label) query: ${definition}`);
  return { match: m[1]!, label: m[2]! };
}

/** A value as Grafana puts it into a regex matcher (=~): its regex metacharacters escaped. */
function regexEscape(v: string): string {
  return v.replace(/[\\^$*+?.()|[\]{}]/g, "\\$&");
}

/**
 * A query as Grafana sends it: each variable's value (a string, "All" is the
 * variable's allValue; several values become (a|b)), and $__rate_interval /
 * $__interval / $__range as the given durations. A `$name` left over is an
 * error, so a new variable in the dashboard is noticed here.
 */
export function interpolate(expr: string, vars: Record<string, string[] | "All">, defs: DashboardVariable[], intervals: { rate: string; interval: string; range: string }): string {
  let out = expr.replaceAll("$__rate_interval", intervals.rate).replaceAll("$__interval", intervals.interval).replaceAll("$__range", intervals.range);
  for (const d of defs) {
    const v = vars[d.name];
    if (v === undefined) continue;
    let text: string;
    if (v === "All") {
      if (!d.includeAll) throw new Error(`variable ${d.name} has no All`);
      text = d.allValue ?? ".*";
    } else text = v.length === 1 ? regexEscape(v[0]!) : `(${v.map(regexEscape).join("|")})`;
    out = out.replace(new RegExp(`\\$\\{${d.name}(?::[a-z]+)?\\}|\\$${d.name}\\b`, "g"), () => text);
  }
  const left = /\$\{?[a-zA-Z_][a-zA-Z0-9_]*/.exec(out);
  if (left) throw new Error(`${expr}: ${left[0]} is not a variable the test knows`);
  return out;
}
