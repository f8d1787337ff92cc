package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/urfave/cli/v2"
)

// Configuration: every flag of every command can also come from an
// environment variable (envName) or a TOML file (--config), with the
// precedence command line > environment > file > default. configurable
// adds all of it to a command; newApp applies it to every command, so no
// flag is wired by hand.

const (
	// envPrefix starts the environment variable of every flag.
	envPrefix = "DARKMATTER_"
	// configFileName is the file read from --data when no --config is given.
	configFileName = "darkmatter.toml"
	// maxConfigSize bounds the config file read into memory.
	maxConfigSize = 1 << 20
)

// Flags that are not configuration: they never come from a file, and
// --print-config does not print them (print-config has no environment
// variable either: a relay whose environment said "print and exit" would
// never start).
var notConfig = map[string]bool{"help": true, "config": true, "print-config": true}

// secretFlags are never printed by --print-config. No flag carries key
// material today (keys live in files under --data); a flag that ever does
// belongs here.
var secretFlags = map[string]bool{}

// envName is the environment variable of a flag: DARKMATTER_ and the name
// in upper case with dashes as underscores (max-links: DARKMATTER_MAX_LINKS).
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// configurable gives every flag of cmd its environment variable, adds
// --config and --print-config, and reads the config file before the
// command runs. Required flags are checked after the file is read (cli
// checks them before Before, when a value from the file is not yet there),
// so they are unmarked here and checked by configure.
func configurable(cmd *cli.Command) *cli.Command {
	if isGroup(cmd) {
		// A group (darkmatter module publish): each subcommand is
		// configured, under the table [group-subcommand].
		for _, sub := range cmd.Subcommands {
			configurableAs(sub, tableName(cmd, sub))
		}
		return cmd
	}
	return configurableAs(cmd, cmd.Name)
}

// isGroup reports whether cmd is a group of subcommands (cli adds a help
// subcommand to every command it runs: that one does not count).
func isGroup(cmd *cli.Command) bool {
	for _, sub := range cmd.Subcommands {
		if sub.Name != "help" {
			return true
		}
	}
	return false
}

// tableName is the config table of a subcommand: [module-publish].
func tableName(group, sub *cli.Command) string { return group.Name + "-" + sub.Name }

// configurableAs is configurable for a command whose config table is table.
func configurableAs(cmd *cli.Command, table string) *cli.Command {
	var required []string
	for _, f := range cmd.Flags {
		name := f.Names()[0]
		if err := setFlagMeta(f, []string{envName(name)}); err != nil {
			panic(fmt.Sprintf("darkmatter %s --%s: %v", cmd.Name, name, err)) // a programming error, caught by TestHelpListsEnvVars, which builds every command
		}
		if r, ok := f.(cli.RequiredFlag); ok && r.IsRequired() {
			required = append(required, name)
			unrequire(f)
		}
	}
	cmd.Flags = append(cmd.Flags,
		&cli.StringFlag{Name: "config", EnvVars: []string{envName("config")},
			Usage: "TOML file of flag values (keys are the flag names; a [" + table + "] table overrides the top level; " +
				"default: DATA/" + configFileName + " when --data is given and the file exists)"},
		&cli.BoolFlag{Name: "print-config", Usage: "print the effective configuration as TOML and exit"},
	)
	before, action := cmd.Before, cmd.Action
	cmd.Before = func(c *cli.Context) error {
		if err := configure(c, table, required); err != nil {
			return err
		}
		if before != nil {
			return before(c)
		}
		return nil
	}
	cmd.Action = func(c *cli.Context) error {
		if c.Bool("print-config") {
			return printConfig(c.App.Writer, c)
		}
		if action == nil {
			return nil
		}
		return action(c)
	}
	return cmd
}

// setFlagMeta sets the environment variables of a flag of a type that
// config files support, and refuses the other types.
func setFlagMeta(f cli.Flag, env []string) error {
	switch f := f.(type) {
	case *cli.StringFlag:
		f.EnvVars = env
	case *cli.BoolFlag:
		f.EnvVars = env
	case *cli.IntFlag:
		f.EnvVars = env
	case *cli.Int64Flag:
		f.EnvVars = env
	case *cli.UintFlag:
		f.EnvVars = env
	case *cli.Float64Flag:
		f.EnvVars = env
	case *cli.DurationFlag:
		f.EnvVars = env
	case *cli.StringSliceFlag:
		f.EnvVars = env
	default:
		return fmt.Errorf("flag type %T not supported by config files", f)
	}
	return nil
}

func unrequire(f cli.Flag) {
	switch f := f.(type) {
	case *cli.StringFlag:
		f.Required = false
	case *cli.BoolFlag:
		f.Required = false
	case *cli.IntFlag:
		f.Required = false
	case *cli.Int64Flag:
		f.Required = false
	case *cli.UintFlag:
		f.Required = false
	case *cli.Float64Flag:
		f.Required = false
	case *cli.DurationFlag:
		f.Required = false
	case *cli.StringSliceFlag:
		f.Required = false
	}
}

// configKey carries the run's configState in the cli.Context's context.
type configKey struct{}

// configState records what the config file set, for --print-config.
type configState struct {
	file     string          // the file read, "" if none
	fromFile map[string]bool // flags whose value came from the file
}

// configure reads the config file (if any) into the flags not set on the
// command line or in the environment, then checks the required flags.
func configure(c *cli.Context, table string, required []string) error {
	st := &configState{fromFile: map[string]bool{}}
	c.Context = context.WithValue(c.Context, configKey{}, st)
	path := c.String("config")
	if !c.IsSet("config") && c.IsSet("data") {
		p := filepath.Join(c.String("data"), configFileName)
		if _, err := os.Stat(p); err == nil {
			path = p
		}
	}
	if path != "" {
		data, err := readConfigFile(path)
		if err != nil {
			return err
		}
		vals, err := parseConfig(data, commandFlags(c.App), table)
		if err != nil {
			return fmt.Errorf("config file %s: %w", path, err)
		}
		st.file = path
		for _, name := range sortedKeys(vals) {
			if c.IsSet(name) { // command line or environment
				continue
			}
			for _, v := range vals[name] {
				if err := c.Set(name, v); err != nil {
					return fmt.Errorf("config file %s: %s: %w", path, name, err)
				}
			}
			st.fromFile[name] = true
		}
	}
	if c.Bool("print-config") {
		return nil // print what there is, complete or not
	}
	for _, name := range required {
		if !c.IsSet(name) {
			return fmt.Errorf("required flag --%s not set (give it on the command line, as %s or in the config file)", name, envName(name))
		}
	}
	return nil
}

func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("config file %s: larger than %d bytes", path, maxConfigSize)
	}
	return data, nil
}

// commandFlags maps each command of the app (each subcommand of a group,
// by its table name) to its flags by name.
func commandFlags(app *cli.App) map[string]map[string]cli.Flag {
	out := map[string]map[string]cli.Flag{}
	add := func(table string, cmd *cli.Command) {
		m := map[string]cli.Flag{}
		for _, f := range cmd.Flags {
			for _, n := range f.Names() {
				if !notConfig[n] {
					m[n] = f
				}
			}
		}
		out[table] = m
	}
	for _, cmd := range app.Commands {
		if !isGroup(cmd) {
			add(cmd.Name, cmd)
			continue
		}
		for _, sub := range cmd.Subcommands {
			add(tableName(cmd, sub), sub)
		}
	}
	return out
}

// parseConfig decodes a TOML config file for command cmd: top-level keys
// are flag names (of any command, applied to the commands that have the
// flag), and a table named for a command holds keys for that command only,
// overriding the top level. It returns each flag's values as strings for
// flag.Value.Set (several for a list). Unknown keys and tables, and values
// of the wrong type, are errors naming the key, also in the tables of
// other commands, so a typo is caught whichever command runs.
func parseConfig(data []byte, cmds map[string]map[string]cli.Flag, cmd string) (map[string][]string, error) {
	var doc map[string]any
	if _, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("line %d: %s", pe.Position.Line, pe.Message)
		}
		return nil, err
	}
	top := map[string][]string{}
	var table map[string][]string
	for _, key := range sortedKeys(doc) {
		val := doc[key]
		if t, ok := val.(map[string]any); ok {
			flags, ok := cmds[key]
			if !ok {
				return nil, fmt.Errorf("[%s]: not a darkmatter command", key)
			}
			vals := map[string][]string{}
			for _, k := range sortedKeys(t) {
				f, ok := flags[k]
				if !ok {
					return nil, fmt.Errorf("[%s] %s: unknown key: not a flag of darkmatter %s%s", key, k, key, suggest(flags, k))
				}
				v, err := flagValues(f, t[k])
				if err != nil {
					return nil, fmt.Errorf("[%s] %s: %w", key, k, err)
				}
				vals[k] = v
			}
			if key == cmd {
				table = vals
			}
			continue
		}
		// A top-level key must be a flag of some command, of the type it
		// has in every command that has it.
		found := false
		for _, name := range sortedKeys(cmds) {
			f, ok := cmds[name][key]
			if !ok {
				continue
			}
			found = true
			v, err := flagValues(f, val)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			if name == cmd {
				top[key] = v
			}
		}
		if !found {
			all := map[string]cli.Flag{}
			for _, flags := range cmds {
				for n, f := range flags {
					all[n] = f
				}
			}
			return nil, fmt.Errorf("%s: unknown key: not a flag of any darkmatter command%s", key, suggest(all, key))
		}
	}
	for k, v := range table {
		top[k] = v
	}
	return top, nil
}

// suggest names the flag closest to a mistyped key, if one is close.
func suggest(flags map[string]cli.Flag, key string) string {
	if cli.SuggestFlag == nil {
		return ""
	}
	list := make([]cli.Flag, 0, len(flags))
	for _, n := range sortedKeys(flags) {
		list = append(list, flags[n])
	}
	s := strings.TrimLeft(cli.SuggestFlag(list, key, true), "-")
	if s == "" {
		return ""
	}
	return " (did you mean " + s + "?)"
}

// flagValues checks a TOML value against the flag's type and returns it
// as the strings flag.Value.Set takes.
func flagValues(f cli.Flag, v any) ([]string, error) {
	switch f.(type) {
	case *cli.StringFlag:
		if s, ok := v.(string); ok {
			return []string{s}, nil
		}
		return nil, wrongType(v, "a string")
	case *cli.BoolFlag:
		if b, ok := v.(bool); ok {
			return []string{strconv.FormatBool(b)}, nil
		}
		return nil, wrongType(v, "true or false")
	case *cli.IntFlag:
		if n, ok := v.(int64); ok && n == int64(int(n)) {
			return []string{strconv.FormatInt(n, 10)}, nil
		}
		return nil, wrongType(v, "an integer")
	case *cli.Int64Flag:
		if n, ok := v.(int64); ok {
			return []string{strconv.FormatInt(n, 10)}, nil
		}
		return nil, wrongType(v, "an integer")
	case *cli.UintFlag:
		if n, ok := v.(int64); ok && n >= 0 && uint64(n) == uint64(uint(n)) {
			return []string{strconv.FormatInt(n, 10)}, nil
		}
		return nil, wrongType(v, "an integer at least 0")
	case *cli.Float64Flag:
		switch n := v.(type) {
		case int64:
			return []string{strconv.FormatInt(n, 10)}, nil
		case float64:
			if !math.IsNaN(n) && !math.IsInf(n, 0) {
				return []string{strconv.FormatFloat(n, 'g', -1, 64)}, nil
			}
		}
		return nil, wrongType(v, "a finite number")
	case *cli.DurationFlag:
		if s, ok := v.(string); ok {
			if _, err := time.ParseDuration(s); err == nil {
				return []string{s}, nil
			}
		}
		return nil, wrongType(v, `a duration such as "90s" or "1h30m"`)
	case *cli.StringSliceFlag:
		switch l := v.(type) {
		case string:
			return []string{l}, nil
		case []any:
			out := make([]string, 0, len(l))
			for _, e := range l {
				s, ok := e.(string)
				if !ok {
					return nil, wrongType(v, "a string or a list of strings")
				}
				out = append(out, s)
			}
			return out, nil
		}
		return nil, wrongType(v, "a string or a list of strings")
	}
	return nil, fmt.Errorf("flag type %T not supported by config files", f)
}

func wrongType(v any, want string) error {
	s := fmt.Sprintf("%v", v)
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return fmt.Errorf("wrong type: %s (%s), want %s", tomlType(v), s, want)
}

func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case bool:
		return "boolean"
	case int64:
		return "integer"
	case float64:
		return "float"
	case []any, []map[string]any:
		return "array"
	case map[string]any:
		return "table"
	case time.Time:
		return "date/time"
	}
	return fmt.Sprintf("%T", v)
}

// printConfig writes the command's effective configuration as TOML that
// --config reads back, each line commented with where its value came from;
// the lines of flags left at their defaults are commented out.
func printConfig(w io.Writer, c *cli.Context) error {
	st, _ := c.Context.Value(configKey{}).(*configState)
	if st == nil {
		st = &configState{}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# darkmatter %s: effective configuration (command line > environment > config file > default)\n", c.Command.Name)
	if st.file != "" {
		fmt.Fprintf(&b, "# config file: %s\n", st.file)
	}
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		if notConfig[name] || secretFlags[name] {
			continue
		}
		var v any
		switch f.(type) {
		case *cli.StringFlag:
			v = c.String(name)
		case *cli.BoolFlag:
			v = c.Bool(name)
		case *cli.IntFlag:
			v = int64(c.Int(name))
		case *cli.Int64Flag:
			v = c.Int64(name)
		case *cli.UintFlag:
			v = uint64(c.Uint(name))
		case *cli.Float64Flag:
			v = c.Float64(name)
		case *cli.DurationFlag:
			v = c.Duration(name).String()
		case *cli.StringSliceFlag:
			v = append([]string{}, c.StringSlice(name)...)
		default:
			continue
		}
		var line bytes.Buffer
		if err := toml.NewEncoder(&line).Encode(map[string]any{name: v}); err != nil {
			return fmt.Errorf("--print-config: %s: %w", name, err)
		}
		src := "default"
		switch {
		case st.fromFile[name]:
			src = "config file"
		case c.IsSet(name):
			src = "command line"
			if env, ok := os.LookupEnv(envName(name)); ok && envMatches(c, f, env) {
				src = "environment " + envName(name)
			}
		}
		prefix := ""
		if src == "default" {
			// Commented out, so that the printed file read back leaves
			// the default to the program (for some flags, being set at
			// all means something: --exit-policy "" is not the default).
			prefix = "# "
		}
		fmt.Fprintf(&b, "%s%s  # %s\n", prefix, strings.TrimRight(line.String(), "\n"), src)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// envMatches reports whether the flag's value is the one its environment
// variable gives (cli does not say whether a value it took from the
// environment was then overridden on the command line).
func envMatches(c *cli.Context, f cli.Flag, env string) bool {
	name := f.Names()[0]
	switch f.(type) {
	case *cli.StringFlag:
		return c.String(name) == env
	case *cli.BoolFlag:
		b, err := strconv.ParseBool(env)
		return err == nil && b == c.Bool(name)
	case *cli.IntFlag:
		n, err := strconv.ParseInt(env, 0, 64)
		return err == nil && n == int64(c.Int(name))
	case *cli.Int64Flag:
		n, err := strconv.ParseInt(env, 0, 64)
		return err == nil && n == c.Int64(name)
	case *cli.UintFlag:
		n, err := strconv.ParseUint(env, 0, 64)
		return err == nil && n == uint64(c.Uint(name))
	case *cli.Float64Flag:
		n, err := strconv.ParseFloat(env, 64)
		return err == nil && n == c.Float64(name)
	case *cli.DurationFlag:
		d, err := time.ParseDuration(env)
		return err == nil && d == c.Duration(name)
	case *cli.StringSliceFlag:
		var want []string
		for _, s := range strings.Split(env, ",") {
			want = append(want, strings.TrimSpace(s))
		}
		return slices.Equal(want, c.StringSlice(name))
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
