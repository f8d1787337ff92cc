package page

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
)

// Data is the input of [Render].
type Data struct {
	Title string `json:"title"`
	Items []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"items"`
}

// Render parses in as [Data] and returns the page.
func Render(in []byte) ([]byte, error) {
	var d Data
	if err := json.Unmarshal(in, &d); err != nil {
		return nil, fmt.Errorf("page: %w", err)
	}
	var b bytes.Buffer
	t := html.EscapeString(d.Title)
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title></head>\n<body><h1>%s</h1>\n<table>\n", t, t)
	for _, it := range d.Items {
		fmt.Fprintf(&b, "<tr><th>%s</th><td>%s</td></tr>\n", html.EscapeString(it.Name), html.EscapeString(it.Value))
	}
	b.WriteString("</table></body></html>\n")
	return b.Bytes(), nil
}
