package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/lambda-mesh/lambda-mesh/extension/internal/lifecycle"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	// Lambda registers an extension under its file name in /opt/extensions/.
	code := lifecycle.Run(ctx, filepath.Base(os.Args[0]), os.Getenv, os.Stdout)
	stop()
	os.Exit(code)
}
