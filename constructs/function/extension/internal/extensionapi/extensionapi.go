// Package extensionapi is a client of the Lambda Extensions API: register, event/next, init/error and exit/error.
package extensionapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client speaks the Lambda Extensions API (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-extensions-api.html).
type Client struct {
	base string
	http *http.Client
	id   string
}

// Event is what event/next returns.
type Event struct {
	EventType      string `json:"eventType"` // INVOKE or SHUTDOWN
	DeadlineMs     int64  `json:"deadlineMs"`
	RequestID      string `json:"requestId"`
	ShutdownReason string `json:"shutdownReason"`
}

// NewClient talks to runtimeAPI (the value of AWS_LAMBDA_RUNTIME_API, host:port).
func NewClient(runtimeAPI string) *Client {
	// No client timeout: event/next is a long poll that lasts until the next event.
	return &Client{base: "http://" + runtimeAPI + "/2020-01-01/extension", http: &http.Client{}}
}

// Register registers the extension for SHUTDOWN events under name (which must be the binary's file name).
func (c *Client) Register(ctx context.Context, name string) error {
	body, _ := json.Marshal(map[string][]string{"events": {"SHUTDOWN"}})
	resp, err := c.do(ctx, http.MethodPost, "/register", map[string]string{"Lambda-Extension-Name": name}, body)
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	id := resp.Header.Get("Lambda-Extension-Identifier")
	if id == "" {
		return fmt.Errorf("register: response has no Lambda-Extension-Identifier header")
	}
	c.id = id
	return nil
}

// NextEvent blocks until the next event.
func (c *Client) NextEvent(ctx context.Context) (*Event, error) {
	resp, err := c.do(ctx, http.MethodGet, "/event/next", c.idHeader(), nil)
	if err != nil {
		return nil, fmt.Errorf("event/next: %w", err)
	}
	var ev Event
	if err := json.Unmarshal(resp.body, &ev); err != nil {
		return nil, fmt.Errorf("event/next: malformed event: %v", err)
	}
	return &ev, nil
}

// InitError reports a failed init; errorType is "Extension.<Reason>". Lambda then fails the init phase.
func (c *Client) InitError(ctx context.Context, errorType, message string) error {
	return c.reportError(ctx, "/init/error", errorType, message)
}

// ExitError reports an error before exiting after init.
func (c *Client) ExitError(ctx context.Context, errorType, message string) error {
	return c.reportError(ctx, "/exit/error", errorType, message)
}

func (c *Client) reportError(ctx context.Context, path, errorType, message string) error {
	body, _ := json.Marshal(map[string]string{"errorMessage": message, "errorType": errorType})
	h := c.idHeader()
	h["Lambda-Extension-Function-Error-Type"] = errorType
	_, err := c.do(ctx, http.MethodPost, path, h, body)
	if err != nil {
		return fmt.Errorf("%s: %w", strings.TrimPrefix(path, "/"), err)
	}
	return nil
}

func (c *Client) idHeader() map[string]string {
	return map[string]string{"Lambda-Extension-Identifier": c.id}
}

type response struct {
	Header http.Header
	body   []byte
}

func (c *Client) do(ctx context.Context, method, path string, headers map[string]string,
	body []byte) (*response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	return &response{Header: resp.Header, body: raw}, nil
}
