# tcplab: `make lab` runs every scenario, `make test` runs all tests.
.DEFAULT_GOAL := help
GO ?= go
export PATH := $(PATH):/usr/local/go/bin

.PHONY: help build test bench fuzz

help: ## show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

build: ## build bin/tcplab
	$(GO) build -o bin/tcplab ./cmd/tcplab

test: ## run all tests (live captures included)
	$(GO) vet ./...
	$(GO) test -count=1 ./...
