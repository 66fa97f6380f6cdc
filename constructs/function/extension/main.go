// Command lambda-mesh-extension is an AWS Lambda external extension (install it in /opt/extensions/) that makes
// the function a member of a Consul service mesh: it binds 127.0.0.1:<localPort> for each upstream and forwards
// every connection over mutual TLS to the mesh gateway, with the identity the registrar stores in SSM.
package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := Run(ctx, filepath.Base(os.Args[0]), os.Getenv, os.Stdout)
	stop()
	os.Exit(code)
}
