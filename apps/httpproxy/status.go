package httpproxy

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/darkmatter/darkmatter/internal/hserr"
	"github.com/darkmatter/darkmatter/internal/proxyserve"
	"github.com/darkmatter/darkmatter/internal/specialname"
	"github.com/darkmatter/darkmatter/internal/streamerr"
)

// StatusCode returns the HTTP status for an error from Dialer.DialStream,
// following the table in the package documentation. A nil error gives 200.
func StatusCode(err error) int {
	if err == nil {
		return http.StatusOK
	}
	if specialname.IsMistyped(err) {
		return http.StatusBadRequest
	}
	if hserr.NotAuthorised(err) {
		return http.StatusForbidden
	}
	if errors.Is(err, context.DeadlineExceeded) || hserr.Of(err) == hserr.IntroTimeout {
		return http.StatusGatewayTimeout
	}
	// A .dark name nobody registered (specialname.ErrNameNotFound), like a
	// hidden service whose descriptor is not found, is 502 with the
	// reason on the page: 404 would read as the origin's answer for the
	// URL, which no origin gave. specialname.ErrName and ErrHiddenService,
	// should a Dialer return them, are unreachable hosts: 502 as well.
	switch streamerr.ReasonOf(err) {
	case streamerr.ExitPolicy:
		return http.StatusForbidden
	case streamerr.Timeout:
		return http.StatusGatewayTimeout
	default:
		return http.StatusBadGateway
	}
}

// failureText is the page text for a failed dial: the rule that refused a
// name that never leaves the client as it stands (no dial was tried),
// otherwise "connect failed: " and proxyserve.DialFailure (for a .dark
// name nobody registered, "connect failed: name not registered"). It
// never holds the target.
func failureText(err error) string {
	var name *specialname.Error
	if errors.As(err, &name) && name != specialname.ErrNameNotFound {
		return name.Error()
	}
	return "connect failed: " + proxyserve.DialFailure(err)
}

// writeStatus writes a complete error response with a one-line text body
// and "Connection: close". msg must not hold an address.
func writeStatus(bw *bufio.Writer, code int, msg string) {
	body := strconv.Itoa(code) + " " + http.StatusText(code) + ": " + msg + "\n"
	_, _ = bw.WriteString("HTTP/1.1 " + strconv.Itoa(code) + " " + http.StatusText(code) + "\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n" +
		"Cache-Control: no-store\r\n" +
		"Connection: close\r\n\r\n" + body)
	_ = bw.Flush()
}
