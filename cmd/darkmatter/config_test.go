package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/urfave/cli/v2"
)

// effective runs a command with --print-config and returns the printed
// configuration, decoded, and the text.
func effective(t *testing.T, args ...string) (map[string]any, string) {
	t.Helper()
	out, err := runApp(t, append(args, "--print-config")...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	var m map[string]any
	if _, err := toml.Decode(out, &m); err != nil {
		t.Fatalf("--print-config output is not TOML: %v\n%s", err, out)
	}
	return m, out
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// hasLine reports whether the printed configuration has the line, source
// comment included.
func hasLine(out, line string) bool {
	return slices.Contains(strings.Split(out, "\n"), line)
}

func TestConfigFileSetsFlag(t *testing.T) {
	p := writeConfig(t, "max-links = 100\nnetwork = \"n1\"\nexit = true\n")
	m, out := effective(t, "relay", "--data", t.TempDir(), "--config", p)
	if m["max-links"] != int64(100) || m["network"] != "n1" || m["exit"] != true {
		t.Errorf("got %v, want max-links 100, network n1, exit true", m)
	}
	if !hasLine(out, "max-links = 100  # config file") {
		t.Errorf("no config file source for max-links:\n%s", out)
	}
	// Flags the file does not name stay at their defaults, commented out.
	if _, ok := m["max-circuits"]; ok || !hasLine(out, "# max-circuits = 65536  # default") {
		t.Errorf("max-circuits is not a commented default:\n%s", out)
	}
}

func TestConfigEnvOverridesFileAndFlagOverridesEnv(t *testing.T) {
	p := writeConfig(t, "max-links = 100\nmax-links-per-ip = 3\n")
	t.Setenv("DARKMATTER_MAX_LINKS", "150")
	m, out := effective(t, "relay", "--data", t.TempDir(), "--config", p)
	if m["max-links"] != int64(150) || m["max-links-per-ip"] != int64(3) {
		t.Errorf("env over file: got max-links %v, max-links-per-ip %v; want 150, 3", m["max-links"], m["max-links-per-ip"])
	}
	if !hasLine(out, "max-links = 150  # environment DARKMATTER_MAX_LINKS") {
		t.Errorf("no environment source for max-links:\n%s", out)
	}
	m, out = effective(t, "relay", "--data", t.TempDir(), "--config", p, "--max-links", "175")
	if m["max-links"] != int64(175) || !hasLine(out, "max-links = 175  # command line") {
		t.Errorf("flag over env: got max-links %v, want 175 from the command line:\n%s", m["max-links"], out)
	}
}

func TestConfigFileFromEnv(t *testing.T) {
	t.Setenv("DARKMATTER_CONFIG", writeConfig(t, "max-links = 42\n"))
	if m, _ := effective(t, "relay", "--data", t.TempDir()); m["max-links"] != int64(42) {
		t.Errorf("DARKMATTER_CONFIG: max-links %v, want 42", m["max-links"])
	}
}

func TestConfigCommandTable(t *testing.T) {
	p := writeConfig(t, `
network = "top"
max-links = 100
socks = "127.0.0.1:1"
listen = "127.0.0.1:9000"

[relay]
max-links = 200

[proxy]
network = "proxy-net"
socks = "127.0.0.1:2"
`)
	m, _ := effective(t, "relay", "--data", t.TempDir(), "--config", p)
	if m["max-links"] != int64(200) || m["network"] != "top" {
		t.Errorf("relay: got max-links %v network %v, want 200 (its table) and top", m["max-links"], m["network"])
	}
	if got := m["listen"]; !slices.Equal(anyStrings(got), []string{"127.0.0.1:9000"}) {
		t.Errorf("relay: listen %v, want the one string of the file", got)
	}
	// The proxy ignores the relay's table and the top-level keys it has
	// no flag for (listen, max-links).
	m, _ = effective(t, "proxy", "--data", t.TempDir(), "--config", p)
	if m["network"] != "proxy-net" || m["socks"] != "127.0.0.1:2" {
		t.Errorf("proxy: got network %v socks %v, want its table's", m["network"], m["socks"])
	}
	if _, ok := m["max-links"]; ok {
		t.Errorf("proxy printed max-links, a relay flag")
	}
}

func anyStrings(v any) []string {
	l, _ := v.([]any)
	out := []string{}
	for _, e := range l {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

func TestConfigSlicesFromFileAndEnv(t *testing.T) {
	p := writeConfig(t, `bootstrap = ["AA@1.2.3.4:1", "BB@1.2.3.4:2"]`)
	m, _ := effective(t, "proxy", "--data", t.TempDir(), "--config", p)
	if got := anyStrings(m["bootstrap"]); !slices.Equal(got, []string{"AA@1.2.3.4:1", "BB@1.2.3.4:2"}) {
		t.Errorf("bootstrap from file: %v", got)
	}
	t.Setenv("DARKMATTER_BOOTSTRAP", "CC@1.2.3.4:3, DD@1.2.3.4:4")
	m, _ = effective(t, "proxy", "--data", t.TempDir(), "--config", p)
	if got := anyStrings(m["bootstrap"]); !slices.Equal(got, []string{"CC@1.2.3.4:3", "DD@1.2.3.4:4"}) {
		t.Errorf("bootstrap from env (comma-separated) over file: %v", got)
	}
	m, _ = effective(t, "proxy", "--data", t.TempDir(), "--config", p, "--bootstrap", "EE@1.2.3.4:5")
	if got := anyStrings(m["bootstrap"]); !slices.Equal(got, []string{"EE@1.2.3.4:5"}) {
		t.Errorf("bootstrap from the command line over env: %v", got)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"max-linkz = 3", "max-linkz: unknown key"},
		{"max-linkz = 3", "did you mean max-links?"},
		{"[relay]\nbogus = 1", "[relay] bogus: unknown key"},
		{"[relya]\nmax-links = 1", "[relya]: not a darkmatter command"},
		{"[proxy]\nlisten = \"x:1\"", "[proxy] listen: unknown key: not a flag of darkmatter proxy"}, // another command's table is checked too
		{"config = \"x.toml\"", "config: unknown key"},
		{"print-config = true", "print-config: unknown key"},
		{`max-links = "3"`, "max-links: wrong type: string"},
		{"max-links = 1.5", "max-links: wrong type: float"},
		{`exit = "yes"`, "exit: wrong type: string"},
		{"bootstrap = 3", "bootstrap: wrong type: integer"},
		{"listen = [1, 2]", "listen: wrong type: array"},
		{`create-rate = "fast"`, "create-rate: wrong type"},
		{"create-rate = nan", "create-rate: wrong type"},
		{"[relay]\nmax-links = true", "[relay] max-links: wrong type: boolean"},
		{"network = 1979-05-27", "network: wrong type: date/time"},
		{"max-links = ", "line 1"},
	} {
		p := writeConfig(t, tc.file)
		_, err := runApp(t, "relay", "--data", t.TempDir(), "--config", p, "--listen", "127.0.0.1:0", "--print-config")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%q: error %v, want one naming the file and containing %q", tc.file, err, tc.want)
		}
	}
}

func TestConfigMissingAndOversizedFile(t *testing.T) {
	if _, err := runApp(t, "relay", "--config", filepath.Join(t.TempDir(), "none.toml"), "--print-config"); err == nil || !strings.Contains(err.Error(), "none.toml") {
		t.Errorf("missing file: %v, want an error naming it", err)
	}
	big := writeConfig(t, "# "+strings.Repeat("x", maxConfigSize)+"\n")
	if _, err := runApp(t, "relay", "--config", big, "--print-config"); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized file: %v, want it refused", err)
	}
}

// DATA/darkmatter.toml is read when --data is given and --config is not.
func TestConfigFileInDataDir(t *testing.T) {
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, configFileName), []byte("max-links = 77\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if m, _ := effective(t, "relay", "--data", data); m["max-links"] != int64(77) {
		t.Errorf("--data with darkmatter.toml: max-links %v, want 77", m["max-links"])
	}
	t.Run("env", func(t *testing.T) {
		t.Setenv("DARKMATTER_DATA", data)
		if m, _ := effective(t, "relay"); m["max-links"] != int64(77) {
			t.Errorf("DARKMATTER_DATA with darkmatter.toml: max-links %v, want 77", m["max-links"])
		}
	})
	// --config wins: the data directory's file is not read at all.
	other := writeConfig(t, "max-links-per-ip = 5\n")
	m, _ := effective(t, "relay", "--data", data, "--config", other)
	if m["max-links-per-ip"] != int64(5) || m["max-links"] != nil {
		t.Errorf("--config with --data: got %v, want only the --config file's values", m)
	}
	// Without --data, the default data directory's file is not read.
	t.Run("default", func(t *testing.T) {
		xdg := t.TempDir()
		t.Setenv("XDG_DATA_HOME", xdg)
		if err := os.MkdirAll(filepath.Join(xdg, "darkmatter"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(xdg, "darkmatter", configFileName), []byte("max-links = 78\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if m, _ := effective(t, "relay"); m["max-links"] != nil {
			t.Errorf("default data directory's file was read: max-links %v", m["max-links"])
		}
	})
}

// Required flags may come from the file or the environment; missing
// everywhere, the command refuses naming the flag.
func TestConfigRequiredFlags(t *testing.T) {
	_, err := runApp(t, "relay", "--data", t.TempDir(), "--log-level", "quiet")
	if err == nil || !strings.Contains(err.Error(), "--listen") || !strings.Contains(err.Error(), "DARKMATTER_LISTEN") {
		t.Errorf("relay without --listen: %v, want an error naming --listen and DARKMATTER_LISTEN", err)
	}
	// With --listen in the file the relay gets past the check to its
	// action, which refuses the zero memory budget before any network.
	p := writeConfig(t, "listen = \"127.0.0.1:0\"\nmemory-budget = 0\nlog-level = \"quiet\"\n")
	_, err = runApp(t, "relay", "--data", t.TempDir(), "--config", p)
	if err == nil || !strings.Contains(err.Error(), "--memory-budget must be positive") {
		t.Errorf("relay with listen in the file: %v, want the action's memory-budget error", err)
	}
	t.Setenv("DARKMATTER_LISTEN", "127.0.0.1:0")
	_, err = runApp(t, "relay", "--data", t.TempDir(), "--memory-budget", "0", "--log-level", "quiet")
	if err == nil || !strings.Contains(err.Error(), "--memory-budget must be positive") {
		t.Errorf("relay with DARKMATTER_LISTEN: %v, want the action's memory-budget error", err)
	}
}

// What --print-config prints, read back as a config file, gives the same
// configuration.
func TestPrintConfigRoundTrip(t *testing.T) {
	p := writeConfig(t, "network = \"n1\"\n[relay]\ncreate-rate = 2.5\nadvertise = [\"1.2.3.4:9000\", \"[2001:db8::1]:9000\"]\n")
	t.Setenv("DARKMATTER_MAX_CIRCUITS", "1000")
	first, out := effective(t, "relay", "--data", t.TempDir(), "--config", p, "--listen", "127.0.0.1:0", "--exit-policy", `accept *:443,reject *:*`)
	os.Unsetenv("DARKMATTER_MAX_CIRCUITS")
	second, _ := effective(t, "relay", "--config", writeConfig(t, out))
	delete(first, "data") // set on the first command line, not the default's
	delete(second, "data")
	if len(first) != len(second) {
		t.Fatalf("read back: %v, want %v", second, first)
	}
	for k, v := range first {
		if !equalTOML(v, second[k]) {
			t.Errorf("%s: read back %v, want %v", k, second[k], v)
		}
	}
	if first["create-rate"] != 2.5 || first["max-circuits"] != int64(1000) || first["exit-policy"] != "accept *:443,reject *:*" {
		t.Errorf("first: %v", first)
	}
}

func equalTOML(a, b any) bool {
	if la, ok := a.([]any); ok {
		return slices.Equal(anyStrings(la), anyStrings(b))
	}
	return a == b
}

func TestPrintConfigLeavesOutSecrets(t *testing.T) {
	secretFlags["network"] = true
	defer delete(secretFlags, "network")
	_, out := effective(t, "relay", "--network", "hush")
	if strings.Contains(out, "network") || strings.Contains(out, "hush") {
		t.Errorf("a secret flag was printed:\n%s", out)
	}
}

// Every flag of every command has its environment variable, shown in
// --help, and --config.
func TestHelpListsEnvVars(t *testing.T) {
	type leaf struct {
		path []string
		cmd  *cli.Command
	}
	var leaves []leaf
	for _, cmd := range newApp().Commands {
		if len(cmd.Subcommands) == 0 {
			leaves = append(leaves, leaf{[]string{cmd.Name}, cmd})
		}
		for _, sub := range cmd.Subcommands {
			leaves = append(leaves, leaf{[]string{cmd.Name, sub.Name}, sub})
		}
	}
	for _, l := range leaves {
		cmd := l.cmd
		out, err := runApp(t, append(l.path, "--help")...)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, f := range cmd.Flags {
			name := f.Names()[0]
			if name == "help" || name == "print-config" {
				continue
			}
			n++
			if want := "[$" + envName(name) + "]"; !strings.Contains(out, "--"+name) || !strings.Contains(out, want) {
				t.Errorf("darkmatter %s --help has no %s for --%s", cmd.Name, want, name)
			}
		}
		if n < 2 || !strings.Contains(out, "[$DARKMATTER_CONFIG]") {
			t.Errorf("darkmatter %s: %d flags, --config listed: %v", cmd.Name, n, strings.Contains(out, "DARKMATTER_CONFIG"))
		}
	}
	if envName("max-links-per-ip") != "DARKMATTER_MAX_LINKS_PER_IP" {
		t.Errorf("envName(max-links-per-ip) = %s", envName("max-links-per-ip"))
	}
}

// testCommand has a flag of each type config files support.
func testCommand(got *cli.Context) *cli.Command {
	return configurable(&cli.Command{
		Name: "t",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "timeout", Value: time.Minute},
			&cli.Float64Flag{Name: "rate", Value: 1},
			&cli.IntFlag{Name: "count", Value: 1},
			&cli.Int64Flag{Name: "big"},
			&cli.UintFlag{Name: "small"},
			&cli.StringFlag{Name: "name", Required: true},
		},
		Action: func(c *cli.Context) error { *got = *c; return nil },
	})
}

func runTest(t *testing.T, file string, args ...string) (*cli.Context, error) {
	t.Helper()
	var got cli.Context
	app := &cli.App{Commands: []*cli.Command{testCommand(&got)}, Writer: &strings.Builder{}, ErrWriter: &strings.Builder{}}
	err := app.Run(append([]string{"x", "t", "--config", writeConfig(t, file)}, args...))
	return &got, err
}

func TestConfigDurationsAndNumbers(t *testing.T) {
	c, err := runTest(t, "name = \"a\"\ntimeout = \"1h30m\"\nrate = 2.5\ncount = 7\nbig = 9007199254740993\nsmall = 3\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Duration("timeout") != 90*time.Minute || c.Float64("rate") != 2.5 || c.Int("count") != 7 || c.Int64("big") != 9007199254740993 || c.Uint("small") != 3 {
		t.Errorf("got timeout %v rate %v count %v big %v small %v", c.Duration("timeout"), c.Float64("rate"), c.Int("count"), c.Int64("big"), c.Uint("small"))
	}
	// An integer is a fine float.
	if c, err := runTest(t, "name = \"a\"\nrate = 3\n"); err != nil || c.Float64("rate") != 3 {
		t.Errorf("rate = 3: %v, %v", c.Float64("rate"), err)
	}
	t.Setenv("DARKMATTER_TIMEOUT", "5s")
	if c, err := runTest(t, "name = \"a\"\ntimeout = \"1h\"\n"); err != nil || c.Duration("timeout") != 5*time.Second {
		t.Errorf("DARKMATTER_TIMEOUT over the file: %v, %v", c.Duration("timeout"), err)
	}
	for _, bad := range []string{"timeout = 90", `timeout = "90"`, `timeout = "soon"`, "small = -1", "rate = inf", `count = "7"`} {
		if _, err := runTest(t, "name = \"a\"\n"+bad); err == nil || !strings.Contains(err.Error(), strings.Fields(bad)[0]+": wrong type") {
			t.Errorf("%s: %v, want a wrong type error naming the key", bad, err)
		}
	}
	if _, err := runTest(t, "count = 1"); err == nil || !strings.Contains(err.Error(), "--name") {
		t.Errorf("required name missing: %v", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"max-links = 100\nbootstrap = [\"ID@1.2.3.4:9000\"]\nlisten = \"0.0.0.0:9000\"\n",
		"[relay]\ncreate-rate = 2.5\nexit = true\n[proxy]\nsocks = \"\"\n",
		"max-links = \"x\"", "[relya]\n", "a.b.c = 1", "[[relay]]\n", "x = {y = 1}", "max-links = 99999999999999999999",
		"create-rate = 1e400", "network = 1979-05-27T07:32:00Z", "listen = [\"a\", 1]",
	} {
		f.Add([]byte(s))
	}
	cmds := commandFlags(newApp())
	f.Fuzz(func(t *testing.T, data []byte) {
		vals, err := parseConfig(data, cmds, "relay")
		if err != nil {
			return
		}
		// What the loader accepts, the relay's flags accept.
		set := newFlagSet(t, relayCommand())
		for name, vs := range vals {
			if cmds["relay"][name] == nil {
				t.Fatalf("accepted %q, not a relay flag", name)
			}
			for _, v := range vs {
				if err := set.Set(name, v); err != nil {
					t.Fatalf("accepted %s = %q, which the flag refuses: %v", name, v, err)
				}
			}
		}
	})
}

// newFlagSet is a flag set with the command's flags, as cli builds it.
func newFlagSet(t *testing.T, cmd *cli.Command) *flag.FlagSet {
	set := flag.NewFlagSet(cmd.Name, flag.ContinueOnError)
	set.SetOutput(io.Discard)
	for _, f := range cmd.Flags {
		if err := f.Apply(set); err != nil {
			t.Fatal(err)
		}
	}
	return set
}

// The README's example relay config is one the relay accepts.
func TestReadmeConfigExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(readme), "\n## Configuration\n")
	_, block, ok2 := strings.Cut(sec, "```toml\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("README has no ## Configuration section with a toml block")
	}
	vals, err := parseConfig([]byte(block), commandFlags(newApp()), "relay")
	if err != nil {
		t.Fatalf("README example: %v", err)
	}
	if !slices.Equal(vals["listen"], []string{"0.0.0.0:9000"}) || len(vals["bootstrap"]) != 2 || !slices.Equal(vals["exit"], []string{"true"}) {
		t.Errorf("README example read as %v", vals)
	}
}
