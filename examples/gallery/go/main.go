// A Go client for netkit's gallery: dial, then block reading until the connection dies.
//
//	usage: gallery-go default|keepalive-1s HOST PORT
//
// "default" is net.Dial: since Go 1.13 it turns keepalive on with Dialer.KeepAlive's
// default of 15 s, which Go documents as the interval between probes but sets as
// TCP_KEEPIDLE *and* TCP_KEEPINTVL; Go 1.19..1.22 leave TCP_KEEPCNT to the system
// (net.ipv4.tcp_keepalive_probes, 9): 15 + 15 x 9 = 150 s.  "keepalive-1s" is
// net.Dialer{KeepAlive: time.Second}: 1 + 1 x 9 = 10 s.
package main

import (
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: gallery-go default|keepalive-1s HOST PORT")
		os.Exit(2)
	}
	address := net.JoinHostPort(os.Args[2], os.Args[3])
	var dialer net.Dialer
	switch os.Args[1] {
	case "default":
	case "keepalive-1s":
		dialer.KeepAlive = time.Second
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
	conn, err := dialer.Dial("tcp", address)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(3)
	}
	fmt.Println("connected")
	start := time.Now()
	buffer := make([]byte, 4096)
	for {
		if _, err := conn.Read(buffer); err != nil {
			fmt.Printf("read failed after %.3f s: %v\n", time.Since(start).Seconds(), err)
			os.Exit(1)
		}
	}
}
