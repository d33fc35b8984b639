// The page's shell: layout and styles; everything it shows is drawn by
// its bundle (page/main.ts) from the API.
export const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hurd web</title>
<style>
  :root { --bg: #0f1419; --panel: #161c23; --line: #2a333d; --fg: #d8dee6; --dim: #8b96a3; --accent: #4fa3ff; --hot: #ffb347; --bad: #ff6b6b; }
  * { box-sizing: border-box; }
  html, body { margin: 0; height: 100%; background: var(--bg); color: var(--fg); font: 13px/1.4 system-ui, sans-serif; }
  header { display: flex; gap: 12px; align-items: center; padding: 8px 12px; border-bottom: 1px solid var(--line); background: var(--panel); flex-wrap: wrap; }
  header h1 { font-size: 15px; margin: 0 8px 0 0; font-weight: 600; }
  header label { color: var(--dim); display: flex; gap: 4px; align-items: center; }
  input, select, button { background: var(--bg); color: var(--fg); border: 1px solid var(--line); border-radius: 4px; padding: 3px 6px; font: inherit; }
  button.tab { cursor: pointer; }
  button.tab.on { border-color: var(--accent); color: var(--accent); }
  #status { margin-left: auto; color: var(--dim); }
  main { display: flex; height: calc(100% - 48px); }
  #cy { flex: 1; min-width: 0; }
  aside { width: 420px; border-left: 1px solid var(--line); background: var(--panel); overflow: auto; padding: 8px 12px; }
  aside h2 { font-size: 13px; margin: 12px 0 6px; color: var(--dim); text-transform: uppercase; letter-spacing: .04em; }
  table { border-collapse: collapse; width: 100%; font: 12px/1.35 ui-monospace, monospace; }
  th, td { text-align: left; padding: 2px 6px 2px 0; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { color: var(--dim); font-weight: normal; }
  #messages li { cursor: pointer; padding: 2px 0; border-bottom: 1px solid var(--line); font: 12px/1.35 ui-monospace, monospace; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  #messages li:hover { color: var(--accent); }
  #messages { list-style: none; margin: 0; padding: 0; }
  pre { white-space: pre-wrap; word-break: break-all; font: 12px/1.35 ui-monospace, monospace; background: var(--bg); padding: 6px; border-radius: 4px; margin: 4px 0; }
  a { color: var(--accent); }
  .dim { color: var(--dim); }
</style>
</head>
<body>
<header>
  <h1>hurd web</h1>
  <button class="tab on" id="tab-procs">Processes</button>
  <button class="tab" id="tab-ports">Ports</button>
  <label>hurd <select id="f-hurd"><option value="">all</option></select></label>
  <label>pid <input id="f-pid" size="6" placeholder="any"></label>
  <label>RPC <input id="f-rpc" size="18" placeholder="any, e.g. Getpids"></label>
  <span id="status">connecting…</span>
</header>
<main>
  <div id="cy"></div>
  <aside>
    <h2>Selected</h2>
    <div id="selected" class="dim">Click a process, a port or an edge.</div>
    <h2 id="space-title" hidden>IPC space</h2>
    <div id="space"></div>
    <h2>Message</h2>
    <div id="message" class="dim">Click a message below.</div>
    <h2>Messages <span id="msg-count" class="dim"></span></h2>
    <ul id="messages"></ul>
  </aside>
</main>
<script type="module" src="/app.js"></script>
</body>
</html>
`;
