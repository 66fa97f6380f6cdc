package lifecycle

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lambda-mesh/lambda-mesh/extension/internal/config"
	"github.com/lambda-mesh/lambda-mesh/extension/internal/meshtest"
)

// fakeLambda is the Extensions API plus SSM, recording the order of calls.
type fakeLambda struct {
	t         *testing.T
	mu        sync.Mutex
	calls     []string
	initError map[string]string // errorType, errorMessage, header
	api, ssm  *httptest.Server

	ssmHandler func(w http.ResponseWriter, r *http.Request)
	// onNext runs when event/next arrives (n counts from 1) and returns the event to send.
	onNext func(n int) string
	nexts  int
}

func newFakeLambda(t *testing.T) *fakeLambda {
	f := &fakeLambda{t: t}
	f.api = httptest.NewServer(http.HandlerFunc(f.serveAPI))
	f.ssm = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.record("ssm")
		f.ssmHandler(w, r)
	}))
	t.Cleanup(f.api.Close)
	t.Cleanup(f.ssm.Close)
	return f
}

func (f *fakeLambda) record(s string) {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
}

func (f *fakeLambda) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeLambda) serveAPI(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == "POST" && r.URL.Path == "/2020-01-01/extension/register":
		f.record("register")
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Lambda-Extension-Name") != "lambda-mesh" ||
			strings.TrimSpace(string(body)) != `{"events":["SHUTDOWN"]}` {
			f.t.Errorf("register: name %q body %s", r.Header.Get("Lambda-Extension-Name"), body)
		}
		w.Header().Set("Lambda-Extension-Identifier", "ext-id-1")
		_, _ = w.Write([]byte(`{"functionName":"fn","functionVersion":"$LATEST","handler":"index.handler"}`))
	case r.Method == "GET" && r.URL.Path == "/2020-01-01/extension/event/next":
		f.record("next")
		if r.Header.Get("Lambda-Extension-Identifier") != "ext-id-1" {
			f.t.Errorf("event/next without the identifier")
		}
		f.mu.Lock()
		f.nexts++
		n := f.nexts
		f.mu.Unlock()
		_, _ = w.Write([]byte(f.onNext(n)))
	case r.Method == "POST" && r.URL.Path == "/2020-01-01/extension/init/error":
		f.record("init/error")
		var body map[string]string
		_ = json.NewDecoder(r.Body).Decode(&body)
		body["header"] = r.Header.Get("Lambda-Extension-Function-Error-Type")
		body["id"] = r.Header.Get("Lambda-Extension-Identifier")
		f.mu.Lock()
		f.initError = body
		f.mu.Unlock()
		_, _ = w.Write([]byte(`{"status":"OK"}`))
	default:
		f.t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		w.WriteHeader(404)
	}
}

func (f *fakeLambda) env(overrides map[string]string) func(string) string {
	env := map[string]string{
		config.EnvRuntimeAPI:         strings.TrimPrefix(f.api.URL, "http://"),
		config.Env.IdentityParameter: "/lambda-mesh/default/default/my-function",
		config.Env.Upstreams:         upstreams(meshtest.FreePort(f.t)),
		config.Env.Gateway:           "127.0.0.1:1",
		config.Env.Datacenter:        meshtest.Datacenter,
		config.Env.SSMEndpoint:       f.ssm.URL,
		"AWS_REGION":                 "eu-west-1",
		"AWS_ACCESS_KEY_ID":          "AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY":      "secret",
		"AWS_SESSION_TOKEN":          "session",
	}
	for k, v := range overrides {
		env[k] = v
	}
	return func(k string) string { return env[k] }
}

// upstreams is the value of config.Env.Upstreams for one upstream, feature-store, on port.
func upstreams(port int) string {
	return `[{"service":"feature-store","localPort":` + strconv.Itoa(port) + `}]`
}

func runExtension(t *testing.T, getenv func(string) string, logs io.Writer) int {
	t.Helper()
	done := make(chan int, 1)
	go func() { done <- Run(context.Background(), "lambda-mesh", getenv, logs) }()
	select {
	case code := <-done:
		return code
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
		return -1
	}
}

func TestRunRegistersInitsThenPollsAndShutsDown(t *testing.T) {
	ca := meshtest.NewCA(t, "mesh-ca")
	client := ca.FreshLeaf(t, meshtest.SpiffeID("my-function"))
	gateway := ca.FreshLeaf(t, meshtest.SpiffeID("feature-store"))
	gw := meshtest.StartGateway(t, gateway.TLS, ca, meshtest.SNI("feature-store"), meshtest.StartEcho(t))
	f := newFakeLambda(t)
	f.ssmHandler = func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Amz-Target") != "AmazonSSM.GetParameter" ||
			r.Header.Get("Content-Type") != "application/x-amz-json-1.1" ||
			!strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") ||
			!strings.Contains(r.Header.Get("Authorization"), "/eu-west-1/ssm/aws4_request") ||
			r.Header.Get("X-Amz-Security-Token") != "session" ||
			string(body) != `{"Name":"/lambda-mesh/default/default/my-function","WithDecryption":true}` {
			t.Errorf("bad SSM request: %v %s", r.Header, body)
		}
		out, _ := json.Marshal(map[string]interface{}{
			"Parameter": map[string]string{"Name": "p", "Value": meshtest.BundleJSON(t, client, ca.PEM)},
		})
		_, _ = w.Write(out)
	}
	port := meshtest.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	f.onNext = func(n int) string {
		if n == 1 {
			// The first invoke can only come now: the listener must already be bound and the certificate loaded,
			// so a request through the mesh succeeds right away.
			if got, err := meshtest.RoundTrip(t, addr, "first invoke"); err != nil || got != "first invoke" {
				t.Errorf("at the first event/next the proxy is not ready: %q %v", got, err)
			}
			return `{"eventType":"INVOKE","deadlineMs":1,"requestId":"r1"}`
		}
		return `{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":1}`
	}
	logs := &meshtest.SyncBuffer{}
	code := runExtension(t, f.env(map[string]string{
		config.Env.Gateway:   gw.Addr,
		config.Env.Upstreams: upstreams(port),
	}), logs)
	if code != 0 {
		t.Fatalf("exit %d; logs:\n%s", code, logs.String())
	}
	if got := strings.Join(f.callLog(), ","); got != "register,ssm,next,next" {
		t.Fatalf("call order %s", got)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("listener still open after SHUTDOWN")
	}
	var shutdown map[string]interface{}
	for _, l := range logs.Lines(t) {
		if l["msg"] == "shutdown" {
			shutdown = l
		}
	}
	if shutdown == nil || shutdown["connections"] != float64(1) || shutdown["bytesIn"] != float64(12) ||
		shutdown["reason"] != "spindown" || shutdown["level"] != "info" {
		t.Fatalf("shutdown log line %v\n%s", shutdown, logs.String())
	}
	if strings.Contains(logs.String(), "PRIVATE KEY") {
		t.Fatal("key material in the logs")
	}
}

func TestRunReportsSSMFailure(t *testing.T) {
	f := newFakeLambda(t)
	f.ssmHandler = func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		_, _ = w.Write([]byte(`{"__type":"InternalServerError","message":"boom"}`))
	}
	f.onNext = func(int) string { t.Error("event/next after a failed init"); return "{}" }
	logs := &meshtest.SyncBuffer{}
	if code := runExtension(t, f.env(nil), logs); code == 0 {
		t.Fatal("exit 0 after a failed init")
	}
	// A 5xx may be transient: tried as often as the SDKs' standard retry mode does, then reported.
	if got := strings.Join(f.callLog(), ","); got != "register,ssm,ssm,ssm,init/error" {
		t.Fatalf("call order %s", got)
	}
	e := f.initError
	if e["header"] != errTypeSSM || e["errorType"] != errTypeSSM || e["id"] != "ext-id-1" ||
		!strings.Contains(e["errorMessage"], "HTTP 500 InternalServerError: boom (after 3 attempts)") ||
		!strings.Contains(e["errorMessage"], "/lambda-mesh/default/default/my-function") {
		t.Fatalf("init error %v", e)
	}
}

func TestRunReportsMissingDatacenter(t *testing.T) {
	f := newFakeLambda(t)
	f.ssmHandler = func(w http.ResponseWriter, r *http.Request) { t.Error("SSM called with a broken config") }
	f.onNext = func(int) string { t.Error("event/next after a failed init"); return "{}" }
	code := runExtension(t, f.env(map[string]string{config.Env.Datacenter: ""}), &meshtest.SyncBuffer{})
	if code == 0 {
		t.Fatal("exit 0 after a failed init")
	}
	e := f.initError
	if e["header"] != errTypeConfig || !strings.Contains(e["errorMessage"], "LAMBDA_MESH_DATACENTER is required") {
		t.Fatalf("init error %v", e)
	}
}

func TestRunReportsInitTimeout(t *testing.T) {
	f := newFakeLambda(t)
	f.ssmHandler = func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body) // lets the server notice the client hanging up
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	}
	f.onNext = func(int) string { t.Error("event/next after a failed init"); return "{}" }
	start := time.Now()
	code := runExtension(t, f.env(map[string]string{config.Env.InitTimeoutMs: "150"}), &meshtest.SyncBuffer{})
	if code == 0 {
		t.Fatal("exit 0 after a failed init")
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("the init budget was not enforced")
	}
	e := f.initError
	if e["header"] != errTypeInitTimeout || !strings.Contains(e["errorMessage"], "within 150ms") ||
		!strings.Contains(e["errorMessage"], "reading the identity parameter") {
		t.Fatalf("init error %v", e)
	}
}

func TestRunReportsBusyPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	ca := meshtest.NewCA(t, "mesh-ca")
	l := ca.FreshLeaf(t, meshtest.SpiffeID("my-function"))
	f := newFakeLambda(t)
	f.ssmHandler = func(w http.ResponseWriter, r *http.Request) {
		out, _ := json.Marshal(map[string]interface{}{
			"Parameter": map[string]string{"Value": meshtest.BundleJSON(t, l, ca.PEM)},
		})
		_, _ = w.Write(out)
	}
	f.onNext = func(int) string { t.Error("event/next after a failed init"); return "{}" }
	port := busy.Addr().(*net.TCPAddr).Port
	code := runExtension(t, f.env(map[string]string{config.Env.Upstreams: upstreams(port)}), &meshtest.SyncBuffer{})
	if code == 0 || f.initError["errorType"] != errTypeListen ||
		!strings.Contains(f.initError["errorMessage"], `upstream "feature-store"`) {
		t.Fatalf("exit %d, init error %v", code, f.initError)
	}
}
