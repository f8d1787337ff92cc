package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed moves the flags of the commands that take arguments
// (darkmatter call HASH FUNCTION --input ...) before those arguments: the
// flag parser of urfave/cli v2 stops at the first argument. A flag is known
// by its command's definitions (a boolean takes no value; any other flag
// takes the next word unless written --flag=value); "--" ends the flags.
// Commands without arguments are left alone.
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	cmd := app.Command(args[1])
	at := 2
	if cmd != nil && isGroup(cmd) && len(args) > 2 {
		cmd = cmd.Command(args[2])
		at = 3
	}
	if cmd == nil || cmd.ArgsUsage == "" {
		return args
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	var flags, pos []string
	rest := args[at:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			pos = append(pos, rest[i+1:]...)
			break
		}
		name := strings.TrimLeft(a, "-")
		if len(name) == len(a) || name == "" {
			pos = append(pos, a) // an argument, or "-" (standard input)
			continue
		}
		name, _, hasValue := strings.Cut(name, "=")
		flags = append(flags, a)
		if takes, known := takesValue[name]; known && takes && !hasValue && i+1 < len(rest) {
			flags = append(flags, rest[i+1])
			i++
		}
	}
	out := append(append([]string{}, args[:at]...), flags...)
	if len(pos) > 0 {
		out = append(append(out, "--"), pos...)
	}
	return out
}
