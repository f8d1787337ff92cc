package split

func space(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

// Split cuts b into at most n non-empty parts of similar size, each cut
// falling on a white-space byte, so that no word is split across parts.
// An empty b gives no parts.
func Split(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > 0 && n > 0 {
		if n == 1 {
			return append(out, b)
		}
		i := len(b) / n
		for i < len(b) && !space(b[i]) {
			i++
		}
		if i > 0 {
			out = append(out, b[:i])
		}
		b = b[i:]
		n--
	}
	return out
}
