package page

import "testing"

func TestRender(t *testing.T) {
	got, err := Render([]byte(`{"title":"A & B","items":[{"name":"<x>","value":"1"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>A &amp; B</title></head>\n<body><h1>A &amp; B</h1>\n<table>\n<tr><th>&lt;x&gt;</th><td>1</td></tr>\n</table></body></html>\n"
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if _, err := Render([]byte(`{"title":`)); err == nil {
		t.Fatal("bad JSON accepted")
	}
}
