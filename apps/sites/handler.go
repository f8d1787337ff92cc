package sites

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/darkmatter/darkmatter/crypto/keys"
)

// Handler ABI limits (spec/sites.md §8).
const (
	// MaxHandlerHeader is the largest header block of a handler's output,
	// its blank line included.
	MaxHandlerHeader = 4096
	// MaxQueryLen is the longest raw query passed to a handler.
	MaxQueryLen = 8192
)

// ErrHandlerOutput is wrapped by every error of a handler's output.
var ErrHandlerOutput = errors.New("sites: bad handler output")

// Handler returns an http.Handler that serves site as a browser sees it
// (spec/sites.md §7): GET and HEAD of its files, redirects and handlers.
func (c *Client) Handler(site keys.IdentityPublicKey) http.Handler {
	return &siteHandler{c: c, site: site, addr: Address(site)}
}

type siteHandler struct {
	c    *Client
	site keys.IdentityPublicKey
	addr string
}

func (h *siteHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		errorPage(w, r, http.StatusMethodNotAllowed, "This site answers GET and HEAD requests only.")
		return
	}
	p, err := CleanPath(r.URL.Path)
	if err != nil {
		errorPage(w, r, http.StatusBadRequest, "The request path is not valid.")
		return
	}
	m, err := h.c.Manifest(r.Context(), h.site)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	match, err := m.Lookup(p)
	if err != nil { // p is clean: not reached
		errorPage(w, r, http.StatusBadRequest, "The request path is not valid.")
		return
	}
	switch match.Kind {
	case File:
		h.file(w, r, match.Entry)
	case Redirect:
		loc := (&url.URL{Path: match.Location, RawQuery: r.URL.RawQuery}).String()
		w.Header().Set("Location", loc)
		w.Header().Set("Cache-Control", "no-cache")
		errorPage(w, r, http.StatusMovedPermanently, "This page moved to its directory.")
	case Dynamic:
		h.dynamic(w, r, m, match)
	default:
		errorPage(w, r, http.StatusNotFound, "This site has no such page.")
	}
}

// fail answers an error of the client.
func (h *siteHandler) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		errorPage(w, r, http.StatusNotFound, "site not found: no manifest is published for this site.")
	case errors.Is(err, ErrBadManifest):
		errorPage(w, r, http.StatusBadGateway, "manifest invalid: the site's manifest did not verify.")
	case errors.Is(err, ErrUnavailable):
		errorPage(w, r, http.StatusBadGateway, "every host failed: no host and not the DHT gave verified content.")
	case isCtxErr(err):
		errorPage(w, r, http.StatusGatewayTimeout, "The site did not answer in time.")
	default:
		errorPage(w, r, http.StatusBadGateway, "The site could not be reached.")
	}
}

func (h *siteHandler) file(w http.ResponseWriter, r *http.Request, e Entry) {
	etag := `"` + hex.EncodeToString(e.Hash[:]) + `"`
	hd := w.Header()
	hd.Set("ETag", etag)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Content-Type-Options", "nosniff")
	if etagMatch(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	var b []byte
	if r.Method == http.MethodGet {
		var err error
		if b, err = h.c.File(r.Context(), h.site, e); err != nil {
			hd.Del("ETag")
			hd.Del("Cache-Control")
			h.fail(w, r, err)
			return
		}
	}
	// HEAD answers from the signed manifest without fetching the file.
	hd.Set("Content-Type", e.ContentType)
	hd.Set("Content-Length", strconv.FormatUint(e.Size, 10))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// etagMatch reports whether an If-None-Match value names etag (weak
// comparison, RFC 9110 §13.1.2).
func etagMatch(inm, etag string) bool {
	if inm == "" {
		return false
	}
	for t := range strings.SplitSeq(inm, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// handlerInput is the JSON input of a handler call (spec/sites.md §8).
type handlerInput struct {
	Method string            `json:"method"`
	Path   string            `json:"path"`
	Query  string            `json:"query"`
	Site   string            `json:"site"`
	Files  map[string]string `json:"files"`
}

// HandlerInput returns the input of a handler call for a request of
// method with cleaned path p and raw query q to site m (spec/sites.md §8).
func HandlerInput(m *Manifest, method, p, q string) []byte {
	in := handlerInput{Method: method, Path: p, Query: q, Site: Address(m.Site), Files: make(map[string]string, len(m.Files))}
	for _, e := range m.Files {
		in.Files[e.Path] = hex.EncodeToString(e.Hash[:])
	}
	b, err := json.Marshal(in)
	if err != nil { // strings and a map of strings: not reached
		panic(err)
	}
	return b
}

func (h *siteHandler) dynamic(w http.ResponseWriter, r *http.Request, m *Manifest, match Match) {
	if len(r.URL.RawQuery) > MaxQueryLen {
		errorPage(w, r, http.StatusRequestURITooLong, "The query is too long.")
		return
	}
	in := HandlerInput(m, r.Method, match.Path, r.URL.RawQuery)
	h.c.stats.calls.Add(1)
	out, err := h.c.env.Call(r.Context(), match.Handler.Module, match.Handler.Function, in)
	if err != nil {
		h.c.stats.callErrs.Add(1)
		h.c.logf("sites: handler call failed: %v", err)
		errorPage(w, r, http.StatusBadGateway, "handler failed: the page's program did not run.")
		return
	}
	res, err := ParseHandlerOutput(out)
	if err != nil {
		h.c.stats.callErrs.Add(1)
		h.c.logf("sites: %v", err)
		errorPage(w, r, http.StatusBadGateway, "handler failed: the page's program gave a bad answer.")
		return
	}
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Type", res.ContentType)
	if !bodyAllowed(res.Status) {
		w.WriteHeader(res.Status)
		return
	}
	hd.Set("Content-Length", strconv.Itoa(len(res.Body)))
	w.WriteHeader(res.Status)
	if r.Method == http.MethodGet {
		w.Write(res.Body)
	}
}

func bodyAllowed(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified
}

// HandlerOutput is a handler's parsed output.
type HandlerOutput struct {
	Status      int    // 200..599; 200 when the output has no Status line
	ContentType string // printable ASCII, 1..MaxContentTypeLen bytes
	Body        []byte
}

// ParseHandlerOutput parses a handler's CGI-like output (spec/sites.md §8,
// after RFC 3875 §6): header lines "Name: value" ending in "\n" or "\r\n",
// a blank line, the body. Content-Type is required, Status ("NNN reason",
// 200..599) optional, each at most once; other headers are ignored. The
// header block, blank line included, is at most MaxHandlerHeader bytes.
func ParseHandlerOutput(out []byte) (HandlerOutput, error) {
	res := HandlerOutput{Status: http.StatusOK}
	seenStatus := false
	rest := out
	for n := 0; ; n++ {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 || len(out)-len(rest)+i+1 > MaxHandlerHeader {
			return HandlerOutput{}, fmt.Errorf("%w: no blank line within the first %d bytes", ErrHandlerOutput, MaxHandlerHeader)
		}
		line := rest[:i]
		rest = rest[i+1:]
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !isToken(name) {
			return HandlerOutput{}, fmt.Errorf("%w: header line %d is not \"Name: value\"", ErrHandlerOutput, n+1)
		}
		value = bytes.Trim(value, " \t")
		if !printable(value) {
			return HandlerOutput{}, fmt.Errorf("%w: header line %d has a byte that is not printable ASCII", ErrHandlerOutput, n+1)
		}
		switch {
		case strings.EqualFold(string(name), "Content-Type"):
			if res.ContentType != "" {
				return HandlerOutput{}, fmt.Errorf("%w: two Content-Type lines", ErrHandlerOutput)
			}
			if err := checkContentType(string(value)); err != nil {
				return HandlerOutput{}, fmt.Errorf("%w: %v", ErrHandlerOutput, err)
			}
			res.ContentType = string(value)
		case strings.EqualFold(string(name), "Status"):
			if seenStatus {
				return HandlerOutput{}, fmt.Errorf("%w: two Status lines", ErrHandlerOutput)
			}
			seenStatus = true
			code, reason, _ := bytes.Cut(value, []byte(" "))
			_ = reason // printable, checked above; the server writes its own
			s, err := strconv.Atoi(string(code))
			if err != nil || len(code) != 3 || s < 200 || s > 599 {
				return HandlerOutput{}, fmt.Errorf("%w: Status is not a code 200..599", ErrHandlerOutput)
			}
			res.Status = s
		}
	}
	if res.ContentType == "" {
		return HandlerOutput{}, fmt.Errorf("%w: no Content-Type", ErrHandlerOutput)
	}
	res.Body = rest
	return res, nil
}

// isToken reports whether b is an HTTP field name (RFC 9110 §5.6.2).
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// errorPage writes a small HTML page saying what happened; it never
// quotes the request.
func errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	text := http.StatusText(status)
	page := fmt.Sprintf("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%d %s</title></head>\n<body><h1>%d %s</h1>\n<p>%s</p></body></html>\n",
		status, text, status, text, html.EscapeString(msg))
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("X-Content-Type-Options", "nosniff")
	if hd.Get("Cache-Control") == "" {
		hd.Set("Cache-Control", "no-store")
	}
	hd.Set("Content-Length", strconv.Itoa(len(page)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write([]byte(page))
	}
}
