package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Environment variables read by the extension.
const (
	EnvRuntimeAPI        = "AWS_LAMBDA_RUNTIME_API"
	EnvIdentityParameter = "LAMBDA_MESH_IDENTITY_PARAMETER"
	EnvUpstreams         = "LAMBDA_MESH_UPSTREAMS"
	EnvGateway           = "LAMBDA_MESH_GATEWAY"
	EnvNamespace         = "LAMBDA_MESH_NAMESPACE"
	EnvDatacenter        = "LAMBDA_MESH_DATACENTER"
	EnvInitTimeoutMs     = "LAMBDA_MESH_INIT_TIMEOUT_MS"
	EnvSSMEndpoint       = "LAMBDA_MESH_SSM_ENDPOINT"
	EnvRefreshCheckMs    = "LAMBDA_MESH_REFRESH_CHECK_MS"
	EnvStatsIntervalMs   = "LAMBDA_MESH_STATS_INTERVAL_MS"
	EnvDialTimeoutMs     = "LAMBDA_MESH_DIAL_TIMEOUT_MS"
)

// Defaults.
const (
	DefaultNamespace       = "default"
	DefaultInitTimeout     = 2000 * time.Millisecond
	DefaultRefreshCheck    = 60 * time.Second
	DefaultStatsInterval   = 60 * time.Second
	DefaultDialTimeout     = 5 * time.Second
	defaultRefreshDeadline = 10 * time.Second
)

// Upstream is one entry of LAMBDA_MESH_UPSTREAMS.
type Upstream struct {
	Service   string `json:"service"`
	LocalPort int    `json:"localPort"`
}

// Config is everything the extension reads from its environment.
type Config struct {
	IdentityParameter string
	Upstreams         []Upstream
	Gateway           string
	Namespace         string
	Datacenter        string
	InitTimeout       time.Duration
	RefreshCheck      time.Duration
	StatsInterval     time.Duration
	DialTimeout       time.Duration

	Region      string
	Credentials Credentials
	SSMEndpoint string
}

// ConfigError lists every problem found in the environment, so one failed cold start shows all of them.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string {
	return "invalid configuration: " + strings.Join(e.Problems, "; ")
}

// A Consul service name as it appears in an SNI label: DNS-label characters only.
var serviceNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// LoadConfig parses the environment through getenv (os.Getenv in production).
func LoadConfig(getenv func(string) string) (*Config, error) {
	var problems []string
	bad := func(format string, args ...interface{}) { problems = append(problems, fmt.Sprintf(format, args...)) }
	req := func(name string) string {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			bad("%s is required", name)
		}
		return v
	}
	ms := func(name string, def time.Duration) time.Duration {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			bad("%s must be a positive integer number of milliseconds, got %q", name, v)
			return def
		}
		return time.Duration(n) * time.Millisecond
	}

	c := &Config{
		IdentityParameter: req(EnvIdentityParameter),
		Gateway:           req(EnvGateway),
		Namespace:         strings.TrimSpace(getenv(EnvNamespace)),
		Datacenter:        req(EnvDatacenter),
		InitTimeout:       ms(EnvInitTimeoutMs, DefaultInitTimeout),
		RefreshCheck:      ms(EnvRefreshCheckMs, DefaultRefreshCheck),
		StatsInterval:     ms(EnvStatsIntervalMs, DefaultStatsInterval),
		DialTimeout:       ms(EnvDialTimeoutMs, DefaultDialTimeout),
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.Gateway != "" {
		if host, port, err := net.SplitHostPort(c.Gateway); err != nil || host == "" || port == "" {
			bad("%s must be host:port, got %q", EnvGateway, c.Gateway)
		}
	}
	for _, label := range []struct{ env, v string }{{EnvNamespace, c.Namespace}, {EnvDatacenter, c.Datacenter}} {
		if label.v != "" && !serviceNameRE.MatchString(label.v) {
			bad("%s must be a lowercase DNS label (it is part of the SNI), got %q", label.env, label.v)
		}
	}

	if raw := req(EnvUpstreams); raw != "" {
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c.Upstreams); err != nil {
			bad(`%s must be JSON like [{"service":"feature-store","localPort":8080}]: %v`, EnvUpstreams, err)
		} else if len(c.Upstreams) == 0 {
			bad("%s lists no upstreams", EnvUpstreams)
		}
		ports := map[int]string{}
		for i, u := range c.Upstreams {
			if !serviceNameRE.MatchString(u.Service) {
				bad("%s[%d].service must be a lowercase DNS label, got %q", EnvUpstreams, i, u.Service)
			}
			if u.LocalPort < 1 || u.LocalPort > 65535 {
				bad("%s[%d].localPort must be 1-65535, got %d", EnvUpstreams, i, u.LocalPort)
			} else if prev, dup := ports[u.LocalPort]; dup {
				bad("%s: localPort %d is used by both %q and %q", EnvUpstreams, u.LocalPort, prev, u.Service)
			}
			ports[u.LocalPort] = u.Service
		}
	}

	c.Region = strings.TrimSpace(getenv("AWS_REGION"))
	if c.Region == "" {
		c.Region = strings.TrimSpace(getenv("AWS_DEFAULT_REGION"))
	}
	if c.Region == "" {
		bad("AWS_REGION is required")
	}
	c.Credentials = Credentials{
		AccessKeyID:     req("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: req("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    strings.TrimSpace(getenv("AWS_SESSION_TOKEN")),
	}
	c.SSMEndpoint = strings.TrimSpace(getenv(EnvSSMEndpoint))
	if c.SSMEndpoint == "" && c.Region != "" {
		c.SSMEndpoint = "https://ssm." + c.Region + ".amazonaws.com"
	}
	if c.SSMEndpoint != "" {
		if u, err := url.Parse(c.SSMEndpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("%s must be an http(s) URL, got %q", EnvSSMEndpoint, c.SSMEndpoint)
		}
	}

	if len(problems) > 0 {
		return nil, &ConfigError{Problems: problems}
	}
	return c, nil
}
