package gateway

import (
	"html/template"
	"net/http"
	"strconv"
)

// pageCSP keeps the gateway's own pages inert: no scripts, frames or
// fetches; inline styles only.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{{.Title}}</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em;line-height:1.5;color:#222}code{background:#eee;padding:0 .2em}</style>
</head><body>
<h1>{{.Title}}</h1>
{{if .Status}}<p><strong>{{.Status}} {{.StatusText}}</strong></p>{{end}}
{{range .Paras}}<p>{{.}}</p>
{{end}}{{if .Home}}<h2>How to use it</h2>
<p>Subdomain form: the site <code>SITE.dark</code> is at <code>{{.Scheme}}://SITE.{{.Domain}}/</code>.</p>
<p>Path form: <code>{{.Scheme}}://{{.Domain}}/SITE.dark/page</code> redirects to <code>{{.Scheme}}://SITE.{{.Domain}}/page</code>.</p>
<p>SITE is a key address (56 letters and digits) or a darkmatter name such as <code>blog.alice</code>.</p>
<h2>You are not anonymous here</h2>
<p>The operator of this gateway sees every request you make through it: your IP address, the sites you visit and the pages you read, and so can anyone who watches your connection{{if eq .Scheme "http"}} (this gateway is reached without encryption){{end}}. The sites do not see your IP address, but the gateway does. To visit network sites anonymously, run darkmatter yourself and use its proxy.</p>
<p>This gateway serves only sites of the darkmatter network. It is not a proxy for the web. Its operator may refuse some sites.</p>
{{end}}</body></html>
`))

type page struct {
	Title      string
	Status     int
	StatusText string
	Paras      []string
	Home       bool
	Scheme     string
	Domain     string
}

// setPageHeaders sets the headers of every page the gateway writes itself.
func setPageHeaders(h http.Header) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("Cache-Control", "no-store")
}

// writePage writes the gateway's own page p with status code.
func writePage(w http.ResponseWriter, code int, p page) {
	setPageHeaders(w.Header())
	w.WriteHeader(code)
	_ = pageTmpl.Execute(w, p)
}

// errorPage writes an error page. Its text is fixed for each status: it
// never quotes the request's host, path or query.
func errorPage(w http.ResponseWriter, code int) {
	p := page{Title: errorTitles[code], Status: code, StatusText: http.StatusText(code), Paras: errorTexts[code]}
	if p.Title == "" {
		p.Title = http.StatusText(code)
	}
	if code == http.StatusMisdirectedRequest || code == http.StatusBadRequest {
		w.Header().Set("Connection", "close")
	}
	writePage(w, code, p)
}

// tooMany writes the 429 page with Retry-After in whole seconds (≥ 1).
func tooMany(w http.ResponseWriter, secs int) {
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	errorPage(w, http.StatusTooManyRequests)
}

var errorTitles = map[int]string{
	http.StatusBadRequest:                 "Bad request",
	http.StatusNotFound:                   "Not found",
	http.StatusRequestEntityTooLarge:      "Request too large",
	http.StatusMisdirectedRequest:         "Not served by this gateway",
	http.StatusTooManyRequests:            "Too many requests",
	http.StatusUnavailableForLegalReasons: "Site refused by this gateway",
	http.StatusBadGateway:                 "Site unreachable",
	http.StatusGatewayTimeout:             "Site too slow",
	http.StatusServiceUnavailable:         "Gateway closed",
}

var errorTexts = map[int][]string{
	http.StatusBadRequest: {
		"This gateway serves only sites of the darkmatter network, as SITE.dark under its own domain. It is not a proxy: it does not accept CONNECT or requests for other hosts.",
		"The request was not one it serves, or the site address was not valid.",
	},
	http.StatusNotFound: {"No such site or page was found on the darkmatter network."},
	http.StatusRequestEntityTooLarge: {
		"The request body is larger than this gateway forwards.",
	},
	http.StatusMisdirectedRequest: {
		"This gateway serves only sites of the darkmatter network, under its own domain. It is not a proxy for other hosts or addresses.",
	},
	http.StatusTooManyRequests: {
		"You sent more requests than this gateway allows. Please wait a moment and try again.",
	},
	http.StatusUnavailableForLegalReasons: {
		"The operator of this gateway refuses to serve this site. The site may still exist on the darkmatter network; this gateway does not serve it.",
	},
	http.StatusBadGateway: {
		"The gateway could not get an answer from this site on the darkmatter network. It may be offline; try again later.",
	},
	http.StatusGatewayTimeout: {
		"The site did not answer in time.",
	},
	http.StatusServiceUnavailable: {"This gateway is shutting down."},
}
