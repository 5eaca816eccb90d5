//go:build tools

// Package tools pins the etcd release the dev control plane builds.
package tools

import _ "go.etcd.io/etcd/server/v3"
