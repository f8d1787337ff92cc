package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/urfave/cli/v2"
)

func keygenCommand() *cli.Command {
	return &cli.Command{
		Name:  "keygen",
		Usage: "generate a hidden-service key and print its .dark address (or, with --client, a client authorisation key; with --author, a module author key)",
		Description: "Writes a new service key to --out (mode 0600) and prints its .dark address.\n" +
			"With --client, writes a client authorisation key instead and prints its public key,\n" +
			"for the service operator's --client-auth file; give the key file to proxy --client-key.\n" +
			"With --author, writes a module author key (Ed25519) for module publish --key and prints\n" +
			"its public key, for the --executor-authors file of executors that run only your modules.\n" +
			"It never overwrites a file: a lost key is a lost address.",
		Flags: append(commonFlags(),
			&cli.StringFlag{Name: "out", Usage: "key file to create (mode 0600; must not exist)", Required: true},
			&cli.BoolFlag{Name: "client", Usage: "make a client authorisation key (X25519) instead of a service key"},
			&cli.BoolFlag{Name: "author", Usage: "make a module author key (Ed25519) instead of a service key"},
		),
		Action: func(c *cli.Context) error {
			var (
				k      keys.PrivateKey
				public string
			)
			switch {
			case c.Bool("client") && c.Bool("author"):
				return errors.New("--client and --author: choose one")
			case c.Bool("author"):
				ak, err := keys.GenerateIdentity(nil)
				if err != nil {
					return err
				}
				pub := ak.Public()
				k, public = ak, hex.EncodeToString(pub[:])
			case c.Bool("client"):
				ck, err := keys.GenerateClientAuth(nil)
				if err != nil {
					return err
				}
				k, public = ck, ck.Public().String()
			default:
				sk, err := keys.GenerateService(nil)
				if err != nil {
					return err
				}
				k, public = sk, sk.Public().Address()
			}
			if err := createKeyFile(c.String("out"), keys.EncodeKeyFile(k)); err != nil {
				return err
			}
			fmt.Println(public)
			return nil
		},
	}
}

// createKeyFile writes data to a new file at path with mode 0600. It
// refuses an existing path (O_EXCL, so no other process can slip a file in
// between a check and the write), and removes what it created if the
// write fails.
func createKeyFile(path string, data []byte) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, keys.FileMode)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("keygen: %s already exists; not overwriting it (a lost key is a lost address): choose another --out or move the file away", path)
	}
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
		}
	}()
	// The umask may have cleared bits of the mode, never added any; set it
	// exactly anyway.
	if err := f.Chmod(keys.FileMode); err != nil {
		return fmt.Errorf("keygen: %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("keygen: %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("keygen: %s: %w", path, err)
	}
	return f.Close()
}
