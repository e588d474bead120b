package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/phr-project/phr/pkg/server/api"
)

// budget bounds how long a slow client may keep a connection before the
// test fails. The server's timeouts in these tests are well below it, so
// the test fails only if a timeout is not applied, not if the machine is
// slow.
const budget = 15 * time.Second

// dribble writes data one byte at a time every gap until the server
// closes the connection (a write or a read fails) or budget ends, and
// returns how long the connection lived and what the server answered
// before closing, if anything.
func dribble(t *testing.T, conn net.Conn, data string, gap time.Duration) (time.Duration, string) {
	t.Helper()
	start := time.Now()
	closed := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(conn) // until the server closes (or the deadline)
		closed <- string(b)
	}()
	conn.SetDeadline(start.Add(budget))
	for i := 0; ; i++ {
		select {
		case answer := <-closed:
			return time.Since(start), answer
		case <-time.After(gap):
		}
		if time.Since(start) > budget {
			t.Fatalf("the server kept a slow client for %v", budget)
		}
		if _, err := conn.Write([]byte{data[i%len(data)]}); err != nil {
			select {
			case answer := <-closed:
				return time.Since(start), answer
			case <-time.After(budget):
				t.Fatal("write failed but the connection did not close")
			}
		}
	}
}

func dial(t *testing.T, m *Main) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(m.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestSlowHeader: a client that sends its header a byte at a time
// (slowloris) is cut off by --read-header-timeout, however long it keeps
// dribbling; meanwhile the server answers others.
func TestSlowHeader(t *testing.T) {
	m, _ := startMain(t, t.TempDir(), "--read-header-timeout", "300ms", "--read-timeout", "1h", "--write-timeout", "1h", "--conn-idle-timeout", "1h")
	conn := dial(t, m)
	io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: phr.test\r\n")
	lived, answer := dribble(t, conn, "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 20*time.Millisecond)
	t.Logf("slow header cut after %v (read-header-timeout 300ms); answer %q", lived, answer)
	if strings.Contains(answer, "200 OK") {
		t.Errorf("the slow request was served: %q", answer)
	}
	if st, _, _ := call(t, "GET", m.URL()+"/healthz", "", nil); st != http.StatusOK {
		t.Fatalf("healthz %d", st)
	}
}

// TestSlowBody: a client that sends its body a byte at a time is cut off
// by --read-timeout with 408 and a JSON error.
func TestSlowBody(t *testing.T) {
	m, _ := startMain(t, t.TempDir(), "--read-header-timeout", "1h", "--read-timeout", "500ms", "--write-timeout", "1h", "--conn-idle-timeout", "1h")
	conn := dial(t, m)
	io.WriteString(conn, "POST /api/v1/sessions HTTP/1.1\r\nHost: phr.test\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n")
	lived, answer := dribble(t, conn, `{"username":"alice","passphrase":"`+strings.Repeat("a", 3000), 20*time.Millisecond)
	t.Logf("slow body cut after %v (read-timeout 500ms); answer %q", lived, answer)
	wantTimeout(t, answer)
}

// TestIdleConnection: a kept-alive connection with nothing more to ask
// is closed after --conn-idle-timeout.
func TestIdleConnection(t *testing.T) {
	m, _ := startMain(t, t.TempDir(), "--read-header-timeout", "1h", "--read-timeout", "1h", "--write-timeout", "1h", "--conn-idle-timeout", "300ms")
	conn := dial(t, m)
	start := time.Now()
	conn.SetDeadline(start.Add(budget))
	io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: phr.test\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Close {
		t.Fatalf("first answer %d, close %v", res.StatusCode, res.Close)
	}
	_, err = br.ReadByte()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("an idle connection stayed open for %v", budget)
	}
	if !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: %v", err)
	}
	t.Logf("idle connection closed after %v (conn-idle-timeout 300ms)", time.Since(start))
}

// TestHugeHeader: a header over --max-header-bytes is refused with 431.
func TestHugeHeader(t *testing.T) {
	m, _ := startMain(t, t.TempDir(), "--max-header-bytes", "4096")
	for _, tt := range []struct {
		size   int
		status int
	}{{1000, http.StatusOK}, {64 << 10, http.StatusRequestHeaderFieldsTooLarge}} {
		conn := dial(t, m)
		conn.SetDeadline(time.Now().Add(budget))
		fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: phr.test\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", tt.size))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%d-byte header: %v", tt.size, err)
		}
		res.Body.Close()
		if res.StatusCode != tt.status {
			t.Errorf("%d-byte header: %d, want %d", tt.size, res.StatusCode, tt.status)
		}
	}
}

// TestSlowUpload: an upload, once its session is checked, gets
// --import-timeout instead of --read-timeout: a slow one outlives the
// read timeout and is imported; one slower than the import timeout gets
// 408.
func TestSlowUpload(t *testing.T) {
	const boundary = "b0undary"
	head := func(token string) string {
		return "POST /api/v1/imports HTTP/1.1\r\nHost: phr.test\r\nAuthorization: Bearer " + token +
			"\r\nContent-Type: multipart/form-data; boundary=" + boundary + "\r\nTransfer-Encoding: chunked\r\n\r\n"
	}
	chunk := func(s string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(s), s) }
	part := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.csv\"\r\nContent-Type: text/csv\r\n\r\n"

	t.Run("outlives the read timeout", func(t *testing.T) {
		m, _ := startMain(t, t.TempDir(), "--read-timeout", "300ms", "--import-timeout", "1h")
		call(t, "POST", m.URL()+"/api/v1/accounts", "", api.CreateAccountRequest{Username: "alice", Passphrase: pass})
		tok := login(t, m.URL(), "alice", pass)
		conn := dial(t, m)
		conn.SetDeadline(time.Now().Add(budget))
		io.WriteString(conn, head(tok)+chunk(part))
		csv := "type,date,name,value,unit\nvital,2026-05-01,weight,70,kg\n"
		for i := 0; i < len(csv); i++ { // a byte every 40 ms: well past 300 ms
			io.WriteString(conn, chunk(csv[i:i+1]))
			time.Sleep(40 * time.Millisecond)
		}
		io.WriteString(conn, chunk("\r\n--"+boundary+"--\r\n")+"0\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("a slow upload was cut: %v", err)
		}
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("slow upload: %d %s", res.StatusCode, body)
		}
	})
	t.Run("slower than the import timeout", func(t *testing.T) {
		m, _ := startMain(t, t.TempDir(), "--read-timeout", "1h", "--import-timeout", "500ms")
		call(t, "POST", m.URL()+"/api/v1/accounts", "", api.CreateAccountRequest{Username: "alice", Passphrase: pass})
		tok := login(t, m.URL(), "alice", pass)
		conn := dial(t, m)
		io.WriteString(conn, head(tok)+chunk(part))
		lived, answer := dribble(t, conn, chunk("a"), 20*time.Millisecond)
		t.Logf("slow upload cut after %v (import-timeout 500ms)", lived)
		wantTimeout(t, answer)
	})
}

// wantTimeout checks that answer, what phrd wrote before it closed the
// connection, is a 408 with the JSON error of a timeout.
func wantTimeout(t *testing.T, answer string) {
	t.Helper()
	res, err := http.ReadResponse(bufio.NewReader(strings.NewReader(answer)), nil)
	if err != nil {
		t.Fatalf("no answer before the close: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	var e api.ErrorBody
	if res.StatusCode != http.StatusRequestTimeout || json.Unmarshal(body, &e) != nil || e.Error.Code != api.CodeTimeout {
		t.Errorf("answer %d %s", res.StatusCode, body)
	}
}
