package scenario

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A bridge whose log goes to a pipe whose reader went away (`hookbridge run
// | jq`, where the Ctrl-C that stops the bridge stops jq too; a log shipper
// that died) goes on without its log: the SIGTERM that comes while a record
// is in flight drains it, commits it and exits 0. It used to be killed by
// SIGPIPE at its first log line after the reader left, the "shutting down"
// line: no drain, no final commit, and no exit code of its own.
func TestLogReaderGoneDoesNotEndTheDrain(t *testing.T) {
	b := newBroker(t)
	topic, group := topicName(t, "in"), topicName(t, "g")
	b.CreateTopic(t, topic, 1)
	rcv, arrived, unblock := holdingReceiver(t)

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bridgeBin, "run", "-c", b.config(t, routeSpec{Topic: topic, Group: group, URL: rcv.url()}))
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = w.Close() // the bridge holds the only write end
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	// Read the log until the bridge runs, then let the reader go.
	adminLine := regexp.MustCompile(`"msg":"hookbridge running".*"admin":"([^"]+)"`)
	admin := ""
	lines := bufio.NewScanner(r)
	for admin == "" && lines.Scan() {
		if m := adminLine.FindStringSubmatch(lines.Text()); m != nil {
			admin = m[1]
		}
	}
	if admin == "" {
		t.Fatal("the bridge never logged that it runs")
	}
	waitFor(t, time.Minute, "/readyz 200", func() bool { code, _ := readyz(admin); return code == 200 })
	_ = r.Close()

	recs := keyed(1, 1)
	b.produce(t, topic, recs)
	select {
	case <-arrived:
	case <-time.After(time.Minute):
		t.Fatal("the record never reached the receiver")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Released once the bridge drains (/readyz says so) or has died.
	waitFor(t, 30*time.Second, "the drain to start", func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		_, body := readyz(admin)
		return strings.Contains(body, "shutting down")
	})
	unblock()
	select {
	case <-exited:
	case <-time.After(time.Minute):
		t.Fatal("the bridge did not exit after SIGTERM")
	}
	if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() || ws.ExitStatus() != 0 {
		t.Fatalf("the bridge ended with %v after SIGTERM, want exit 0", cmd.ProcessState)
	}
	checkDelivered(t, rcv, recs)
	if got := b.Committed(t, group, topic, 1); got[0] != 1 {
		t.Fatalf("committed offset %d, want 1: the record delivered during the drain was not committed", got[0])
	}
}

// readyz returns the status and body of admin's /readyz; 0 when it does
// not answer.
func readyz(admin string) (int, string) {
	resp, err := http.Get("http://" + admin + "/readyz")
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
