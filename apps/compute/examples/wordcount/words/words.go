package words

// Count returns the number of words in b: maximal runs of bytes that are not
// ASCII white space (space, \t, \n, \v, \f, \r).
func Count(b []byte) int {
	n, in := 0, false
	for _, c := range b {
		space := c == ' ' || (c >= '\t' && c <= '\r')
		if !space && !in {
			n++
		}
		in = !space
	}
	return n
}
