//go:build !unix

package keys

import "os"

// checkPermissions does nothing where Unix permission bits do not exist;
// there the key directory's ACLs protect key files.
func checkPermissions(path string, mode os.FileMode) error { return nil }
