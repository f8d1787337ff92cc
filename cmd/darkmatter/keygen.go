package main

import (
	"fmt"

	"github.com/darkmatter/darkmatter/crypto/keys"
	"github.com/urfave/cli/v2"
)

func keygenCommand() *cli.Command {
	return &cli.Command{
		Name:  "keygen",
		Usage: "generate a hidden-service key and print its .dark address",
		Flags: append(commonFlags(),
			&cli.StringFlag{Name: "out", Usage: "key file to write (mode 0600)", Required: true},
		),
		Action: func(c *cli.Context) error {
			k, err := keys.GenerateService(nil)
			if err != nil {
				return err
			}
			if err := keys.WriteFile(c.String("out"), k); err != nil {
				return err
			}
			fmt.Println(k.Public().Address())
			return nil
		},
	}
}
