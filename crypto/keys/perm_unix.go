//go:build unix

package keys

import "os"

// checkPermissions refuses key files that the group or other users may
// access, like ssh does.
func checkPermissions(path string, mode os.FileMode) error {
	if perm := mode.Perm(); perm&0o077 != 0 {
		return &PermissionError{Path: path, Perm: perm}
	}
	return nil
}
