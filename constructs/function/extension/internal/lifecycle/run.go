// Package lifecycle runs the extension through Lambda's extension lifecycle: register, init (configuration,
// identity and listeners within a time budget, or an init error), the event loop, and shutdown.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/lambda-mesh/lambda-mesh/extension/internal/bundle"
	"github.com/lambda-mesh/lambda-mesh/extension/internal/config"
	"github.com/lambda-mesh/lambda-mesh/extension/internal/extensionapi"
	"github.com/lambda-mesh/lambda-mesh/extension/internal/jsonlog"
	"github.com/lambda-mesh/lambda-mesh/extension/internal/proxy"
	"github.com/lambda-mesh/lambda-mesh/extension/internal/ssm"
)

// Init error types reported to Lambda as Extension.<Reason>.
const (
	errTypeConfig      = "Extension.ConfigError"
	errTypeSSM         = "Extension.SSMError"
	errTypeBundle      = "Extension.BundleError"
	errTypeListen      = "Extension.ListenError"
	errTypeInitTimeout = "Extension.InitTimeout"
	errTypeEventLoop   = "Extension.EventLoopError"
)

// Run is the whole extension: register, init, event loop. It returns the process exit code.
func Run(ctx context.Context, name string, getenv func(string) string, stdout io.Writer) int {
	log := jsonlog.New(stdout)
	api := getenv(config.EnvRuntimeAPI)
	if api == "" {
		log.Error(config.EnvRuntimeAPI + " is not set: the extension only runs inside AWS Lambda")
		return 1
	}
	ext := extensionapi.NewClient(api)
	if err := ext.Register(ctx, name); err != nil {
		log.Error("registration with the Extensions API failed", "extension", name, "error", err)
		return 1
	}

	cfg, err := config.Load(getenv)
	if err != nil {
		return failInit(ctx, ext, log, errTypeConfig, err)
	}
	stats := &proxy.Stats{}
	px := proxy.New(cfg, log, stats)
	params := &ssm.Client{
		Endpoint: cfg.SSMEndpoint, Region: cfg.Region, Credentials: cfg.Credentials, HTTP: &http.Client{},
	}
	fetch := func(ctx context.Context) (*bundle.Identity, error) {
		v, err := params.GetParameter(ctx, cfg.IdentityParameter)
		if err != nil {
			return nil, err
		}
		return bundle.Parse([]byte(v), time.Now())
	}

	start := time.Now()
	if errType, err := initialize(ctx, cfg, px, fetch); err != nil {
		px.Close()
		return failInit(ctx, ext, log, errType, err)
	}
	// Half the timer interval: a timer tick always finds the backoff of the previous tick's attempt over.
	refresher := proxy.NewRefresher(px, fetch, log, stats, cfg.RefreshCheck/2)
	px.SetRefresh(refresher.Check)
	px.Serve()
	id := px.Identity()
	log.Info("ready", "upstreams", cfg.Upstreams, "gateway", cfg.Gateway, "trustDomain", id.TrustDomain,
		"serial", id.Serial(), "expires", id.Leaf.NotAfter.UTC().Format(time.RFC3339),
		"initMs", time.Since(start).Milliseconds())

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
			px.Close()
			stopBG()
			if ctx.Err() != nil {
				log.Info("stopped", append([]interface{}{"reason", ctx.Err()}, stats.Fields()...)...)
				return 0
			}
			log.Error("event loop failed", append([]interface{}{"error", err}, stats.Fields()...)...)
			if rerr := ext.ExitError(context.Background(), errTypeEventLoop, err.Error()); rerr != nil {
				log.Error("could not report exit error", "error", rerr)
			}
			return 1
		}
		if ev.EventType == "SHUTDOWN" {
			px.Close()
			stopBG()
			log.Info("shutdown", append([]interface{}{"reason", ev.ShutdownReason}, stats.Fields()...)...)
			return 0
		}
	}
}

// initialize binds the listeners and loads the identity in parallel, within cfg.InitTimeout. On success the
// proxy holds both, so the first invoke (which can only come after event/next) never races the init.
func initialize(ctx context.Context, cfg *config.Config, px *proxy.Proxy,
	fetch func(context.Context) (*bundle.Identity, error)) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.InitTimeout)
	defer cancel()
	type result struct {
		step string
		id   *bundle.Identity
		err  error
	}
	const stepListen, stepIdentity = "binding listeners", "reading the identity parameter"
	results := make(chan result, 2)
	go func() { results <- result{step: stepListen, err: px.Bind()} }()
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
		return errTypeInitTimeout, fmt.Errorf("init did not finish within %s (%s): still %s (parameter %s, gateway %s)",
			cfg.InitTimeout, config.Env.InitTimeoutMs, strings.Join(steps, " and "), cfg.IdentityParameter, cfg.Gateway)
	}
	for len(pending) > 0 {
		select {
		case r := <-results:
			if r.err != nil {
				if ctx.Err() != nil {
					return timeout()
				}
				var be *bundle.Error
				switch {
				case r.step == stepListen:
					return errTypeListen, r.err
				case errors.As(r.err, &be):
					return errTypeBundle, fmt.Errorf("parameter %s: %w", cfg.IdentityParameter, r.err)
				default:
					return errTypeSSM, r.err
				}
			}
			delete(pending, r.step)
			if r.id != nil {
				px.SetIdentity(r.id)
			}
		case <-ctx.Done():
			return timeout()
		}
	}
	return "", nil
}

func failInit(ctx context.Context, ext *extensionapi.Client, log *jsonlog.Logger, errType string, err error) int {
	log.Error("init failed", "errorType", errType, "error", err)
	if rerr := ext.InitError(ctx, errType, err.Error()); rerr != nil {
		log.Error("could not report init error", "error", rerr)
	}
	return 1
}
