package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Init error types reported to Lambda as Extension.<Reason>.
const (
	ErrTypeConfig      = "Extension.ConfigError"
	ErrTypeSSM         = "Extension.SSMError"
	ErrTypeBundle      = "Extension.BundleError"
	ErrTypeListen      = "Extension.ListenError"
	ErrTypeInitTimeout = "Extension.InitTimeout"
	ErrTypeEventLoop   = "Extension.EventLoopError"
)

// Run is the whole extension: register, init, event loop. It returns the process exit code.
func Run(ctx context.Context, name string, getenv func(string) string, stdout io.Writer) int {
	log := NewLogger(stdout)
	api := getenv(EnvRuntimeAPI)
	if api == "" {
		log.Error(EnvRuntimeAPI + " is not set: the extension only runs inside AWS Lambda")
		return 1
	}
	ext := NewExtensionClient(api)
	if err := ext.Register(ctx, name); err != nil {
		log.Error("registration with the Extensions API failed", "extension", name, "error", err)
		return 1
	}

	cfg, err := LoadConfig(getenv)
	if err != nil {
		return failInit(ctx, ext, log, ErrTypeConfig, err)
	}
	stats := &Stats{}
	proxy := NewProxy(cfg, log, stats)
	ssm := &SSMClient{Endpoint: cfg.SSMEndpoint, Region: cfg.Region, Credentials: cfg.Credentials, HTTP: &http.Client{}}
	fetch := func(ctx context.Context) (*Identity, error) {
		v, err := ssm.GetParameter(ctx, cfg.IdentityParameter)
		if err != nil {
			return nil, err
		}
		return ParseBundle([]byte(v), time.Now())
	}

	start := time.Now()
	if errType, err := initialize(ctx, cfg, proxy, fetch); err != nil {
		proxy.Close()
		return failInit(ctx, ext, log, errType, err)
	}
	// Half the timer interval: a timer tick always finds the backoff of the previous tick's attempt over.
	refresher := NewRefresher(proxy, fetch, log, stats, cfg.RefreshCheck/2)
	proxy.SetRefresh(refresher.Check)
	proxy.Serve()
	id := proxy.Identity()
	log.Info("ready", "upstreams", cfg.Upstreams, "gateway", cfg.Gateway, "trustDomain", id.TrustDomain,
		"serial", id.Serial(), "expires", id.Leaf.NotAfter.UTC().Format(time.RFC3339), "initMs", time.Since(start).Milliseconds())

	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	go refresher.Run(bg, cfg.RefreshCheck)
	go func() {
		t := time.NewTicker(cfg.StatsInterval)
		defer t.Stop()
		for {
			select {
			case <-bg.Done():
				return
			case <-t.C:
				log.Info("stats", stats.Fields()...)
			}
		}
	}()

	for {
		ev, err := ext.NextEvent(ctx)
		if err != nil {
			proxy.Close()
			stopBG()
			if ctx.Err() != nil {
				log.Info("stopped", append([]interface{}{"reason", ctx.Err()}, stats.Fields()...)...)
				return 0
			}
			log.Error("event loop failed", append([]interface{}{"error", err}, stats.Fields()...)...)
			if rerr := ext.ExitError(context.Background(), ErrTypeEventLoop, err.Error()); rerr != nil {
				log.Error("could not report exit error", "error", rerr)
			}
			return 1
		}
		if ev.EventType == "SHUTDOWN" {
			proxy.Close()
			stopBG()
			log.Info("shutdown", append([]interface{}{"reason", ev.ShutdownReason}, stats.Fields()...)...)
			return 0
		}
	}
}

// initialize binds the listeners and loads the identity in parallel, within cfg.InitTimeout. On success the
// proxy holds both, so the first invoke (which can only come after event/next) never races the init.
func initialize(ctx context.Context, cfg *Config, proxy *Proxy, fetch func(context.Context) (*Identity, error)) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.InitTimeout)
	defer cancel()
	type result struct {
		step string
		id   *Identity
		err  error
	}
	const stepListen, stepIdentity = "binding listeners", "reading the identity parameter"
	results := make(chan result, 2)
	go func() { results <- result{step: stepListen, err: proxy.Bind()} }()
	go func() {
		id, err := fetch(ctx)
		results <- result{step: stepIdentity, id: id, err: err}
	}()
	pending := map[string]bool{stepListen: true, stepIdentity: true}
	timeout := func() (string, error) {
		var steps []string
		for s := range pending {
			steps = append(steps, s)
		}
		sort.Strings(steps)
		return ErrTypeInitTimeout, fmt.Errorf("init did not finish within %s (%s): still %s (parameter %s, gateway %s)",
			cfg.InitTimeout, EnvInitTimeoutMs, strings.Join(steps, " and "), cfg.IdentityParameter, cfg.Gateway)
	}
	for len(pending) > 0 {
		select {
		case r := <-results:
			if r.err != nil {
				if ctx.Err() != nil {
					return timeout()
				}
				var be *BundleError
				switch {
				case r.step == stepListen:
					return ErrTypeListen, r.err
				case errors.As(r.err, &be):
					return ErrTypeBundle, fmt.Errorf("parameter %s: %w", cfg.IdentityParameter, r.err)
				default:
					return ErrTypeSSM, r.err
				}
			}
			delete(pending, r.step)
			if r.id != nil {
				proxy.SetIdentity(r.id)
			}
		case <-ctx.Done():
			return timeout()
		}
	}
	return "", nil
}

func failInit(ctx context.Context, ext *ExtensionClient, log *Logger, errType string, err error) int {
	log.Error("init failed", "errorType", errType, "error", err)
	if rerr := ext.InitError(ctx, errType, err.Error()); rerr != nil {
		log.Error("could not report init error", "error", rerr)
	}
	return 1
}
