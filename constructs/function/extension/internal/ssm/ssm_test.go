package ssm

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lambda-mesh/lambda-mesh/extension/internal/sigv4"
)

// ssmStandIn answers GetParameter with the statuses and bodies of answers, in order, then with the last one.
func ssmStandIn(t *testing.T, answers ...[2]string) (*Client, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(calls.Add(1)) - 1
		if n >= len(answers) {
			n = len(answers) - 1
		}
		status := map[string]int{"200": 200, "400": 400, "500": 500, "503": 503}[answers[n][0]]
		w.WriteHeader(status)
		_, _ = w.Write([]byte(answers[n][1]))
	}))
	t.Cleanup(srv.Close)
	creds := sigv4.Credentials{AccessKeyID: "AKID", SecretAccessKey: "s"}
	return &Client{Endpoint: srv.URL, Region: "eu-west-1", Credentials: creds, HTTP: srv.Client()}, &calls
}

func TestGetParameterRetriesThrottlingAndServerErrors(t *testing.T) {
	c, calls := ssmStandIn(t,
		[2]string{"400", `{"__type":"ThrottlingException","message":"Rate exceeded"}`},
		[2]string{"503", `{"__type":"ServiceUnavailable"}`},
		[2]string{"200", `{"Parameter":{"Value":"v"}}`})
	v, err := c.GetParameter(context.Background(), "/p")
	if err != nil || v != "v" || calls.Load() != 3 {
		t.Fatalf("value %q err %v after %d calls", v, err, calls.Load())
	}
}

func TestGetParameterDoesNotRetryClientErrors(t *testing.T) {
	c, calls := ssmStandIn(t, [2]string{"400", `{"__type":"ParameterNotFound","message":"Parameter /p not found."}`})
	_, err := c.GetParameter(context.Background(), "/p")
	if err == nil || calls.Load() != 1 ||
		!strings.HasSuffix(err.Error(), "HTTP 400 ParameterNotFound: Parameter /p not found.") {
		t.Fatalf("err %v after %d calls", err, calls.Load())
	}
}

func TestGetParameterStopsRetryingWhenTheContextEnds(t *testing.T) {
	c, calls := ssmStandIn(t, [2]string{"500", `{"__type":"InternalServerError"}`})
	c.Attempts = 1000
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.GetParameter(ctx, "/p")
	if err == nil || time.Since(start) > 2*time.Second || calls.Load() >= 1000 {
		t.Fatalf("err %v after %d calls in %s", err, calls.Load(), time.Since(start))
	}
}
