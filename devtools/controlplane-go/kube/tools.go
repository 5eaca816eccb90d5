//go:build tools

// Package tools pins the Kubernetes release whose kube-apiserver (and, where no kubectl
// is installed, kubectl) the dev control plane builds.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
