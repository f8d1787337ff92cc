// Package httpproxy is darkmatter's client-side HTTP proxy front end. It
// accepts the two kinds of proxy request that browsers and tools send, and
// opens every outgoing connection as one stream through the overlay, with
// the [Dialer] the [Server] was given:
//
//   - CONNECT host:port (a tunnel, normally for TLS): the stream is opened,
//     the client gets "HTTP/1.1 200 Connection established", and bytes are
//     copied both ways (including any the client sent right after its
//     request headers) until both sides are done. A half-close is passed on
//     with CloseWrite (an END one way on a circuit stream), so a client
//     that sends its request and shuts its write side still gets the whole
//     response; where the stream cannot half-close, the client's EOF
//     closes both connections.
//   - An absolute-URI request (GET http://host[:port]/path HTTP/1.1): a
//     stream is opened to host:port (port 80 by default) and the request is
//     forwarded in origin-form (GET /path HTTP/1.1) with the hop-by-hop
//     headers removed and "Connection: close"; the response is copied back
//     with its hop-by-hop headers removed. Bodies stream both ways; neither
//     is buffered whole. Interim 1xx responses (100 Continue) are passed on.
//
// The client connection is kept alive across absolute-URI requests (each
// opens its own stream); a CONNECT ends it after the tunnel. A response
// without a length is sent to an HTTP/1.1 client with chunked encoding, to
// an HTTP/1.0 client delimited by closing the connection. If the origin
// answers before the whole request body was sent, the response carries
// "Connection: close" and the client connection is closed after it, since
// the rest of the body can no longer be told apart from the next request.
//
// What it does not do:
//   - It never resolves a host name and never opens a connection itself,
//     and it never sends a name that must stay on the client (.dark,
//     .onion, .alt, localhost, .local, home.arpa, .internal;
//     spec/streams.md §7) to the Dialer: such a request is answered with
//     a page that says why: 400 for a mistyped .dark address, naming the
//     check it fails ("mistyped .dark address: bad checksum (a character
//     is wrong)"), or a mistyped .dark name ("mistyped .dark name: ..."),
//     and 502 for the other names. A valid .dark address goes to the
//     Dialer, which reaches the hidden service (the name never leaves the
//     node); so does a valid .dark name (its label before .dark does not
//     have the 56 bytes of an address; spec/names.md), which the node
//     resolves through the network: one nobody registered is 502,
//     "connect failed: name not registered".
//     The Host header of an absolute-URI request is
//     replaced by the URI's authority (RFC 9112 §3.2.2), so a name in it
//     goes nowhere.
//   - No https:// (or any other scheme) in absolute-URI requests: clients use
//     CONNECT for TLS. Origin-form requests (GET /path) are not proxy
//     requests and get 400. No HTTP/2, no Upgrade/WebSocket through an
//     absolute-URI request (a WebSocket client uses CONNECT), no caching, no
//     Via or Forwarded headers (they would identify the client).
//   - Hop-by-hop headers that an origin lists in a Connection header together
//     with "close" are passed on to the client: net/http's ReadResponse
//     drops such a Connection header before the proxy sees it (as for
//     httputil.ReverseProxy).
//   - No authentication: Proxy-Authorization credentials are never checked,
//     they only choose the isolation key.
//   - It logs no addresses or URLs in clear: targets go through safelog.S.
//
// # Isolation key
//
//	no Proxy-Authorization                       ""
//	Proxy-Authorization: Basic base64(u ":" p)   "http:" + len(u) + ":" + u + len(p) + ":" + p
//
// with the lengths in decimal, so ("a", "bc") and ("ab", "c") differ. A
// Proxy-Authorization header that is not well-formed Basic, or that appears
// more than once, is answered 400 rather than silently sharing circuits.
//
// # Status codes
//
// A failed DialStream is answered with a short text/plain body naming the
// failure (never the target) and the connection is closed. [StatusCode]
// maps the dial error:
//
//	error                                   status
//	specialname mistyped .dark address      400 Bad Request
//	  or name (IsMistyped: ErrBadName, ...)
//	specialname ErrNameNotFound             502 Bad Gateway ("connect failed: name not registered";
//	                                          not 404, which would read as the origin's answer)
//	hserr ClientAuthMissing, ClientAuthWrong 403 Forbidden ("not authorised: ...")
//	hserr IntroTimeout                      504 Gateway Timeout
//	hserr (other hidden-service failures)   502 Bad Gateway (the body names the failure)
//	streamerr ExitPolicy                    403 Forbidden
//	streamerr Timeout                       504 Gateway Timeout
//	context.DeadlineExceeded (DialTimeout)  504 Gateway Timeout
//	streamerr ResolveFailed, ConnRefused,
//	  Unreachable, NoExit, Destroyed,
//	  BadAddress, Misc, ProtocolError,
//	  ResourceLimit, Done, Unsupported,
//	  Closed, any other error               502 Bad Gateway
//
// Errors found by the proxy itself:
//
//	request                                           status
//	host under .dark, mistyped address (a label of
//	  56 bytes before .dark: base32, version,
//	  checksum or key; spec/keys.md §3) or invalid
//	  name (any other length; spec/names.md §1)       400 Bad Request (no dial; the body names the check)
//	host under .onion, .alt, .localhost, .local,
//	  home.arpa, .internal, or localhost              502 Bad Gateway (no dial; the body says why)
//	malformed request, origin-form, scheme not http,
//	  bad host or port, userinfo in the URI,
//	  bad Proxy-Authorization                         400 Bad Request
//	request headers over 1 MiB                        431 Request Header Fields Too Large
//	HTTP version other than 1.x                       505 HTTP Version Not Supported
//	invalid or missing response from the origin       502 Bad Gateway (if nothing was sent yet)
//
// HandshakeTimeout (5 s by default) bounds reading each request's line and
// headers, from the accept or the end of the previous response, however
// the client spreads its bytes (a slowloris that drips one byte a second
// is closed, without an answer, when it passes); so it also bounds the
// idle time between keep-alive requests, as Privoxy's keep-alive-timeout
// (also 5 s) does. DialTimeout bounds each DialStream. Neither applies to
// bodies or tunnels.
//
// No spec/ section is normative for this package; RFC 9110 and RFC 9112
// are.
package httpproxy
