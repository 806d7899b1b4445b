// Command toxiproxy is Toxiproxy's server (github.com/Shopify/toxiproxy/v2) for the project's
// fault-injection tests (mcpreg_dev.faultproxy): a TCP proxy whose faults (latency, timeouts,
// resets, bandwidth limits, connections cut after N bytes, proxies down) are set through its HTTP API.
//
// It differs from upstream's cmd/server in two ways only: it exits non-zero when its API cannot
// listen (upstream logs the error and keeps running with no API), and it logs at "info" by default.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/Shopify/toxiproxy/v2"
)

func main() {
	host := flag.String("host", "127.0.0.1", "address for the HTTP API to listen on")
	port := flag.String("port", "8474", "port for the HTTP API to listen on")
	level := flag.String("log-level", "info", "zerolog level: debug, info, warn, error")
	printVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()

	if *printVersion {
		fmt.Printf("toxiproxy-server version %s\n", toxiproxy.Version)
		return
	}

	zerolog.TimestampFunc = func() time.Time { return time.Now().UTC() }
	logger := zerolog.New(os.Stdout).With().Timestamp().Logger()
	if lvl, err := zerolog.ParseLevel(*level); err == nil {
		logger = logger.Level(lvl)
	}
	logger.Info().Str("version", toxiproxy.Version).Msg("Starting Toxiproxy")

	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), logger)
	addr := net.JoinHostPort(*host, *port)
	failed := make(chan error, 1)
	go func() { failed <- server.Listen(addr) }()

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	select {
	case err := <-failed:
		fmt.Fprintf(os.Stderr, "toxiproxy: API on %s: %v\n", addr, err)
		os.Exit(1)
	case <-signals:
	}
	if err := server.Shutdown(); err != nil {
		fmt.Fprintf(os.Stderr, "toxiproxy: shutdown: %v\n", err)
		os.Exit(1)
	}
}
