package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// completion prints a completion script for bash, zsh or fish, built from
// the commands and flags themselves so that it never drifts from them.
func completion(c *cli.Context) error {
	shell := c.Args().First()
	cmds, flags := commandNames(c.App), flagNames(serveFlags())
	w := c.App.Writer
	switch shell {
	case "bash":
		writeBash(w, cmds, flags)
	case "zsh":
		writeZsh(w, cmds, flags)
	case "fish":
		script, err := c.App.ToFishCompletion()
		if err != nil {
			return err
		}
		fmt.Fprint(w, script)
	default:
		return usageError{fmt.Errorf("completion needs a shell: bash, zsh or fish (e.g. llmproxy completion bash > /etc/bash_completion.d/llmproxy)")}
	}
	return nil
}

func commandNames(app *cli.App) []string {
	var out []string
	for _, cmd := range app.Commands {
		if !cmd.Hidden {
			out = append(out, cmd.Name)
		}
	}
	return out
}

func flagNames(flags []cli.Flag) []string {
	var out []string
	for _, f := range flags {
		out = append(out, "--"+f.Names()[0])
	}
	slices.Sort(out)
	return out
}

// choices are the values a flag takes, completed after it.
var choices = map[string]string{
	"--transport":  "auto socket fetch",
	"--log-format": "auto text json",
}

func writeBash(w io.Writer, cmds, flags []string) {
	fmt.Fprintf(w, `# llmproxy completion for bash: source it, or put it in /etc/bash_completion.d/llmproxy
_llmproxy() {
  local cur prev
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD-1]}"
  case "$prev" in
    --config|--upstream-ca) COMPREPLY=( $(compgen -f -- "$cur") ); return ;;
    --data-dir) COMPREPLY=( $(compgen -d -- "$cur") ); return ;;
`)
	for _, f := range []string{"--transport", "--log-format"} {
		fmt.Fprintf(w, "    %s) COMPREPLY=( $(compgen -W %q -- \"$cur\") ); return ;;\n", f, choices[f])
	}
	fmt.Fprintf(w, `  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=( $(compgen -W %q -- "$cur") )
  elif [[ $COMP_CWORD -eq 1 ]]; then
    COMPREPLY=( $(compgen -W %q -- "$cur") )
  elif [[ "${COMP_WORDS[1]}" == completion ]]; then
    COMPREPLY=( $(compgen -W "bash zsh fish" -- "$cur") )
  fi
}
complete -F _llmproxy llmproxy
`, strings.Join(flags, " "), strings.Join(cmds, " "))
}

func writeZsh(w io.Writer, cmds, flags []string) {
	fmt.Fprintf(w, `#compdef llmproxy
# llmproxy completion for zsh: put it in a directory of $fpath as _llmproxy
_llmproxy() {
  local -a commands flags
  commands=(%s)
  flags=(%s)
  case "${words[CURRENT-1]}" in
    --config|--upstream-ca) _files; return ;;
    --data-dir) _files -/; return ;;
    --transport) compadd %s; return ;;
    --log-format) compadd %s; return ;;
  esac
  if [[ "${words[CURRENT]}" == -* ]]; then
    compadd -a flags
  elif (( CURRENT == 2 )); then
    compadd -a commands
  elif [[ "${words[2]}" == completion ]]; then
    compadd bash zsh fish
  fi
}
compdef _llmproxy llmproxy
`, strings.Join(cmds, " "), strings.Join(flags, " "), choices["--transport"], choices["--log-format"])
}
