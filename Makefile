# make test: everything CI runs. make run: estd on https://127.0.0.1:8443.
GO ?= go
# Builds and tests use Go 1.27.3, which the go command fetches once from the
# module proxy: it carries the standard-library security fixes govulncheck
# asks for. go.mod stays at 1.26, so a plain `go build` with Go 1.26 works too.
export GOTOOLCHAIN ?= go1.27.3

.PHONY: test deps vet lint unit run build fuzz

test: deps vet lint unit

deps:
	@./scripts/deps.sh

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# staticcheck and govulncheck (see scripts/lint.sh).
lint:
	@./scripts/lint.sh

unit:
	$(GO) test -race -count=1 -timeout 15m ./...

build:
	$(GO) build -o bin/ ./cmd/...

run:
	$(GO) run ./cmd/estd

# Short fuzz pass over every parser (not part of make test).
fuzz:
	for f in $$($(GO) test -list '^Fuzz' . | grep ^Fuzz); do \
	  $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 30s . || exit 1; done
