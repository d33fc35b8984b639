// hurd completion bash|zsh|fish: a completion script written from the
// commands main.ts declares (names, options, subcommands), so it never
// falls behind them. Hurd names after --hurd come from the session files.
import { SIG } from "@hurdmesh/mach";
import { UsageError } from "./errors.js";

export interface CommandSpec {
  name: string;
  description: string;
  options: string[];
  /** Words that may follow the command (subcommands, or fixed operands such as a shell's name). */
  words: CommandSpec[];
}

const signals = Object.keys(SIG).join(" ");

function bash(cmds: CommandSpec[]): string {
  const cases = cmds
    .map((c) => {
      if (c.words.length && c.words.some((w) => w.options.length || w.words.length)) {
        const inner = c.words.map((w) => `        ${w.name}) opts="${w.options.join(" ")}" ;;`).join("\n");
        return `    ${c.name})\n      if (( COMP_CWORD == 2 )); then opts="${c.words.map((w) => w.name).join(" ")}"\n      else case "\${COMP_WORDS[2]}" in\n${inner}\n      esac; fi ;;`;
      }
      return `    ${c.name}) opts="${[...c.words.map((w) => w.name), ...c.options].join(" ")}" ;;`;
    })
    .join("\n");
  return `# bash completion for hurd: source <(hurd completion bash)
_hurd() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" opts=""
  if [[ "$prev" == "--hurd" ]]; then
    local f names=""
    for f in "\${HURD_STATE_DIR:-$HOME/.hurdmesh}"/*.json; do [[ -e "$f" ]] && names+=" $(basename "$f" .json)"; done
    COMPREPLY=( $(compgen -W "$names" -- "$cur") )
    return
  fi
  if [[ "$prev" == "-s" || "$prev" == "--signal" || "$prev" == "-n" ]]; then
    COMPREPLY=( $(compgen -W "${signals}" -- "$cur") )
    return
  fi
  if (( COMP_CWORD == 1 )); then
    COMPREPLY=( $(compgen -W "${cmds.map((c) => c.name).join(" ")} --help --version" -- "$cur") )
    return
  fi
  case "\${COMP_WORDS[1]}" in
${cases}
  esac
  COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
}
complete -F _hurd hurd
`;
}

const q = (s: string) => s.replace(/'/g, "'\\''").replace(/:/g, "\\:");

function zsh(cmds: CommandSpec[]): string {
  const list = cmds.map((c) => `    '${q(c.name)}:${q(c.description)}'`).join("\n");
  const cases = cmds
    .map((c) => {
      if (c.words.length && c.words.some((w) => w.options.length || w.words.length)) {
        const inner = c.words.map((w) => `        ${w.name}) compadd -- ${w.options.join(" ")} ;;`).join("\n");
        return `    ${c.name})\n      if (( CURRENT == 3 )); then compadd -- ${c.words.map((w) => w.name).join(" ")}\n      else case $words[3] in\n${inner}\n      esac; fi ;;`;
      }
      return `    ${c.name}) compadd -- ${[...c.words.map((w) => w.name), ...c.options].join(" ")} ;;`;
    })
    .join("\n");
  return `#compdef hurd
# zsh completion for hurd: source <(hurd completion zsh), or save it as _hurd in a folder of $fpath
_hurd() {
  local -a cmds
  cmds=(
${list}
  )
  if [[ $words[CURRENT-1] == --hurd ]]; then
    local -a names
    names=(\${HURD_STATE_DIR:-$HOME/.hurdmesh}/*.json(N:t:r))
    compadd -a names
    return
  fi
  if [[ $words[CURRENT-1] == (-s|--signal|-n) ]]; then
    compadd -- ${signals}
    return
  fi
  if (( CURRENT == 2 )); then
    _describe 'command' cmds
    return
  fi
  case $words[2] in
${cases}
  esac
}
if (( $+functions[compdef] )); then compdef _hurd hurd; fi
`;
}

function fish(cmds: CommandSpec[]): string {
  const lines = [
    "# fish completion for hurd: hurd completion fish | source, or save it as ~/.config/fish/completions/hurd.fish",
    "complete -c hurd -f",
    `complete -c hurd -l hurd -x -a '(for f in (set -q HURD_STATE_DIR; and echo $HURD_STATE_DIR; or echo ~/.hurdmesh)/*.json; basename $f .json; end)' -d 'which hurd'`,
    `complete -c hurd -s s -l signal -x -a '${signals}' -d 'signal'`,
  ];
  const opt = (cond: string, o: string) => (o.startsWith("--") ? `complete -c hurd -n '${cond}' -l ${o.slice(2)}` : `complete -c hurd -n '${cond}' -o ${o.slice(1)}`);
  for (const c of cmds) {
    lines.push(`complete -c hurd -n __fish_use_subcommand -a ${c.name} -d '${c.description.replace(/'/g, "\\'")}'`);
    const cond = `__fish_seen_subcommand_from ${c.name}`;
    for (const w of c.words) lines.push(`complete -c hurd -n '${cond}' -a ${w.name} -d '${w.description.replace(/'/g, "\\'")}'`);
    for (const o of c.options) if (o !== "--hurd" && o !== "-s" && o !== "--signal") lines.push(opt(cond, o));
    for (const w of c.words) for (const o of w.options) if (o !== "--hurd") lines.push(opt(`__fish_seen_subcommand_from ${w.name}`, o));
  }
  return `${lines.join("\n")}\n`;
}

export function completion(shell: string, cmds: CommandSpec[]): void {
  const make = { bash, zsh, fish }[shell];
  if (!make) throw new UsageError(`no completion for ${shell} (bash, zsh or fish)`);
  process.stdout.write(make(cmds));
}
