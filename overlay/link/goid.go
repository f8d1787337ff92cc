package link

import "runtime"

// goid returns the current goroutine's ID, parsed from the first line of
// its stack trace ("goroutine 123 [running]:"). Close uses it only to tell
// whether it runs on the link's own reader goroutine (inside a Handler
// callback), where it must not wait for that goroutine to exit.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	const prefix = "goroutine "
	if len(b) < len(prefix) {
		return 0
	}
	var id uint64
	for _, c := range b[len(prefix):] {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}
