package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestWebhookHeaders checks that validate refuses the configured headers the
// webhook target refuses when run starts it, each on the line of its key.
func TestWebhookHeaders(t *testing.T) {
	const headers = "routes[0].target.webhook.headers"
	tests := []struct {
		name, entry, path, msg string // msg "" means valid
	}{
		{"plain", "X-Api-Key: v", "", ""},
		{"every token character", "\"!#$%&'*+-.^_`|~09azAZ\": v", "", ""},
		{"content type and user agent", "Content-Type: application/json", "", ""},
		{"tab in the value", `X-A: "a` + "\t" + `b"`, "", ""},
		{"empty value", `X-A: ""`, "", ""},
		{"not quite reserved", "Webhook: v", "", ""},
		{"space in the name", `"X Bad": v`, headers, "a header name must be an HTTP token"},
		{"header line as the name", `"Authorization: Bearer s3cr3t": v`, headers, "a header name must be an HTTP token"},
		{"non-ASCII name", `"Äpfel": v`, headers, "a header name must be an HTTP token"},
		{"empty name", `"": v`, headers, "header names must not be empty"},
		{"webhook-", "Webhook-Id: x", headers + ".Webhook-Id", "is set by the bridge and cannot be configured"},
		{"ce-", "ce-type: x", headers + ".ce-type", "is set by the bridge"},
		{"kafka-", "KAFKA-TOPIC: x", headers + ".KAFKA-TOPIC", "is set by the bridge"},
		{"hookbridge-", "Hookbridge-Attempt: x", headers + ".Hookbridge-Attempt", "is set by the bridge"},
		{"trace context", "Traceparent: x", headers + ".Traceparent", "is set by the bridge"},
		{"baggage", "baggage: x", headers + ".baggage", "is set by the bridge"},
		{"framing", "Content-Length: \"1\"", headers + ".Content-Length", "is set by the bridge"},
		{"hop by hop", "TE: trailers", headers + ".TE", "is set by the bridge"},
		{"expect", "Expect: 100-continue", headers + ".Expect", "is set by the bridge"},
		{"CR in the value", `X-A: "a\rb"`, headers + ".X-A", "the value holds a control character"},
		{"LF in the value", `X-A: "a\nb"`, headers + ".X-A", "the value holds a control character"},
		{"NUL in the value", `X-A: "a\0b"`, headers + ".X-A", "the value holds a control character"},
		{"DEL in the value", `X-A: "a\x7Fb"`, headers + ".X-A", "the value holds a control character"},
		{"other control character", `X-A: "a\x01b"`, headers + ".X-A", "the value holds a control character"},
		{"control character from the environment", `X-A: "${CRLF}"`, headers + ".X-A", "the value holds a control character"},
	}
	vars := map[string]string{"CRLF": "v\r\nX-Injected: s3cr3t"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := hookWith("https://h/x", "headers:", "  "+tt.entry)
			errs := checkParse(t, src, vars, tt.path, tt.msg, hookLine+1)
			if strings.Contains(errs.Error(), "s3cr3t") || strings.Contains(errs.Error(), "a\\rb") {
				t.Errorf("a problem shows a header value:\n%v", errs)
			}
		})
	}
}

// TestReservedHeadersMatchWebhook checks that the reserved header names are
// those reservedHeader in bridge/webhook/headers.go refuses when run starts a
// webhook target: validate must refuse exactly what run refuses. When one
// list changes, change the other (and this test, if reservedHeader changes
// shape).
func TestReservedHeadersMatchWebhook(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../webhook/headers.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var fn *ast.FuncDecl
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == "reservedHeader" {
			fn = fd
		}
	}
	if fn == nil {
		t.Fatal("bridge/webhook/headers.go has no func reservedHeader")
	}
	var prefixes, names []string
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CompositeLit: // the []string of prefixes
			prefixes = append(prefixes, stringLiterals(t, n.Elts)...)
		case *ast.CaseClause: // the case of whole names
			names = append(names, stringLiterals(t, n.List)...)
		}
		return true
	})
	tests := []struct {
		what          string
		webhook, ours []string
	}{
		{"prefixes", prefixes, reservedHeaderPrefixes},
		{"names", names, reservedHeaderNames},
	}
	for _, tt := range tests {
		if !slices.Equal(slices.Sorted(slices.Values(tt.webhook)), slices.Sorted(slices.Values(tt.ours))) {
			t.Errorf("reserved header %s differ:\nbridge/webhook: %q\nbridge/config:  %q", tt.what, tt.webhook, tt.ours)
		}
	}
}

// stringLiterals returns the values of string literals, failing the test on
// any other expression.
func stringLiterals(t *testing.T, exprs []ast.Expr) []string {
	t.Helper()
	var out []string
	for _, e := range exprs {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			t.Fatalf("reservedHeader in bridge/webhook/headers.go holds %T where a string literal was expected; update this test", e)
		}
		s, err := strconv.Unquote(lit.Value)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}
