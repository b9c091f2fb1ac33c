package receiver

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// receiversDocSnippet returns the Python of docs/receivers.md's "In Python"
// section up to the route (@app.post): the secret and verified(), which a
// receiver team copies as it is.
func receiversDocSnippet(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "receivers.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## In Python\n")
	if !ok {
		t.Fatal("docs/receivers.md has no section \"In Python\"")
	}
	_, code, ok := strings.Cut(section, "```python\n")
	if !ok {
		t.Fatal("docs/receivers.md, \"In Python\": no python block")
	}
	code, _, ok = strings.Cut(code, "\n@app.post")
	if !ok {
		t.Fatal("docs/receivers.md, \"In Python\": no @app.post after verified()")
	}
	return code
}

// The verification snippet of docs/receivers.md answers every request with
// True or False: a request the bridge signed is accepted, and a forged or
// malformed one is refused (the route answers 401), never turned into an
// exception (a 500 and a traceback from FastAPI). Starlette hands header
// values over as Latin-1 text, so a webhook-timestamp of "²" (byte 0xB2)
// passes str.isdigit() and then fails int(); so does a timestamp of 5,000
// digits (Python refuses to convert more than 4,300).
func TestReceiversDocVerifySnippet(t *testing.T) {
	py := fastAPIPython(t)
	dir := t.TempDir()
	snippet := filepath.Join(dir, "snippet.py")
	if err := os.WriteFile(snippet, []byte(receiversDocSnippet(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	// One case a line on stdin, {"headers": {...}, "body": hex}; one answer
	// a line on stdout: accepted, refused, or raised <exception>.
	harness := filepath.Join(dir, "harness.py")
	if err := os.WriteFile(harness, []byte(`import json, sys
ns = {}
exec(open(sys.argv[1]).read(), ns)
for line in sys.stdin:
    case = json.loads(line)
    try:
        ok = ns["verified"](case["headers"], bytes.fromhex(case["body"]))
        print("accepted" if ok is True else "refused" if ok is False else "returned " + repr(ok), flush=True)
    except Exception as e:
        print("raised " + type(e).__name__, flush=True)
`), 0o644); err != nil {
		t.Fatal(err)
	}

	bridge := newSigner(t, oldSecret, newSecret) // the snippet holds newSecret
	body := []byte(`{"order":7}`)
	binary := []byte{0x00, 0xff, 0xfe, '\n'}
	now := time.Now().Unix()
	signed := func(id, ts string, b []byte) map[string]string {
		sec, _ := strconv.ParseInt(ts, 10, 64)
		return map[string]string{"webhook-id": id, "webhook-timestamp": ts, "webhook-signature": bridge.Header(id, sec, b)}
	}
	withTS := func(ts string) map[string]string {
		h := signed("orders-0-1", strconv.FormatInt(now, 10), body)
		h["webhook-timestamp"] = ts
		return h
	}
	cases := []struct {
		name    string
		headers map[string]string
		body    []byte
		want    string
	}{
		{"signed by the bridge", signed("orders-0-1", strconv.FormatInt(now, 10), body), body, "accepted"},
		{"not UTF-8, signed", signed("orders-0-2", strconv.FormatInt(now, 10), binary), binary, "accepted"},
		{"another body", signed("orders-0-3", strconv.FormatInt(now, 10), body), binary, "refused"},
		{"stale", signed("orders-0-4", strconv.FormatInt(now-301, 10), body), body, "refused"},
		{"no signature", map[string]string{"webhook-id": "orders-0-5", "webhook-timestamp": strconv.FormatInt(now, 10)}, body, "refused"},
		{"timestamp not a number", withTS("soon"), body, "refused"},
		{"timestamp of a Latin-1 superscript digit", withTS("\u00b2"), body, "refused"},
		{"timestamp of 5000 digits", withTS(strings.Repeat("9", 5000)), body, "refused"},
	}

	cmd := exec.Command(py, harness, snippet)
	cmd.Env = append(os.Environ(), "WEBHOOK_SECRET="+newSecret)
	var in strings.Builder
	for _, c := range cases {
		line, err := json.Marshal(map[string]any{"headers": c.headers, "body": hex.EncodeToString(c.body)})
		if err != nil {
			t.Fatal(err)
		}
		in.Write(line)
		in.WriteByte('\n')
	}
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for _, c := range cases {
		if !sc.Scan() {
			t.Fatalf("%s: no answer from the snippet; output:\n%s", c.name, out)
		}
		if got := sc.Text(); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}
