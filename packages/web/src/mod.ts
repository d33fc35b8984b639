// `hurd web`: the server (startWeb), the model it keeps (Model, with the
// Observed it reads through), the edge's Observed (edgeObserved), the
// view's bounds, and the JSON the page gets.
export { startWeb, type WebOptions, type WebServer } from "./server.js";
export { Model, MODEL_BOUNDS, rightsOf, type HurdView, type Observed } from "./model.js";
export { edgeObserved, procsOf, type EdgeObservedOptions, type Reached } from "./observe.js";
export { VIEW_BOUNDS, viewOf, statOf } from "./aggregate.js";
export type * from "./types.js";
